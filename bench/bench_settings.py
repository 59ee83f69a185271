"""powernode.settings plus the benchmarks' yardstick routes (bench_urls): served by scripts/serve.sh exactly
like the product, so a comparison with a bare view measures only what the platform adds."""

from powernode.settings import *  # noqa: F403

ROOT_URLCONF = "bench_urls"
