"""powernode: a Django platform that turns node instances into managed container hosts."""
