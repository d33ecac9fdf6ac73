#!/usr/bin/env bash
# tcmalloc for the CPU demo and benchmarks (the Makefile preloads it when present): the
# learner's fp32/bf16 update returns large logits buffers to the OS under glibc malloc and
# page-faults them back on the next micro-batch; tcmalloc keeps them (about 20-25 % on the
# update, docs/benchmarks.md). Installs Debian's libtcmalloc-minimal4 when run as root with
# apt-get; otherwise says how. Never fails.
if ls /usr/lib/*/libtcmalloc_minimal.so.4 /usr/lib/libtcmalloc_minimal.so.4 >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    { apt-get install -y -q libtcmalloc-minimal4 || { apt-get update -q && apt-get install -y -q libtcmalloc-minimal4; }; } \
        >/dev/null 2>&1 && exit 0
fi
echo "note: tcmalloc not installed (apt-get install libtcmalloc-minimal4 makes the CPU update ~20% faster)"
exit 0
