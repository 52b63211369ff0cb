#!/usr/bin/env bash
# `make check`: the tree is clang-format clean (.clang-format, kernel style)
# and builds without a warning (-Wall -Wextra -Werror, done by `make all`).
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t files < <(git ls-files '*.c' '*.h' | grep -v '^vmlinux.h$')
if ! clang-format --dry-run --Werror "${files[@]}" 2>/tmp/sluice-format.$$; then
	head -40 /tmp/sluice-format.$$
	rm -f /tmp/sluice-format.$$
	echo "check: formatting differs from .clang-format; run 'make format'" >&2
	exit 1
fi
rm -f /tmp/sluice-format.$$
echo "check: ${#files[@]} files formatted, build clean"
