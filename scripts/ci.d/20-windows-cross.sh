#!/usr/bin/env bash
# Windows checks that run on Linux (the Windows backend cannot run here):
#   1. the Windows C++ sources (native/src/windows/*.cc and the platform-neutral native/src/*.cc)
#      compile with the mingw-w64 cross compiler in syntax-only mode against node-addon-api and
#      Node's headers, with -Wall -Wextra -Werror;
#   2. the eBPF-for-Windows program compiles with clang -target bpf against our minimal header,
#      has the cgroup/connect4 section and calls only the helper ids efw_minimal.h declares;
#   3. the shared struct layouts agree between the BPF target and x64 Windows (MSVC ABI via clang,
#      and mingw-w64).
# Usage: 20-windows-cross.sh [--no-install] [--checks-only]
#   --no-install   never apt-get; missing tools are an error naming the command to run
#   --checks-only  run the compile checks only (test/windows calls this); otherwise also run the
#                  test/windows suite with the checks required, including its must-fail cases
# GPA_WIN_ROOT=<dir> takes native/ and test/windows/layout_probe.c from <dir> instead of the repo
# (test/windows points it at a copy with an injected error to prove the check fails).
set -euo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
src_root="${GPA_WIN_ROOT:-$repo}"
install=1
checks_only=0
for arg in "$@"; do
  case "$arg" in
    --no-install) install=0 ;;
    --checks-only) checks_only=1 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

# Prefer the posix-thread flavour of mingw g++ (std::mutex etc. available); fall back to default.
pick_cxx() {
  for c in x86_64-w64-mingw32-g++-posix x86_64-w64-mingw32-g++; do
    if command -v "$c" >/dev/null 2>&1; then echo "$c"; return 0; fi
  done
  return 1
}

need_install=()
pick_cxx >/dev/null || need_install+=(mingw-w64)
command -v clang >/dev/null 2>&1 || need_install+=(clang)
command -v llvm-objdump >/dev/null 2>&1 || need_install+=(llvm)
if [ "${#need_install[@]}" -gt 0 ]; then
  if [ "$install" = 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "windows-cross: installing ${need_install[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${need_install[@]}" >/dev/null
  else
    echo "windows-cross: missing ${need_install[*]}; run as root: apt-get install -y ${need_install[*]}" >&2
    exit 3
  fi
fi
cxx="$(pick_cxx)"

# Node's headers: the running Node's include/node, else the distro's /usr/include/node.
node_prefix="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
node_inc=""
for d in "$node_prefix/include/node" /usr/include/node; do
  if [ -f "$d/node_api.h" ]; then node_inc="$d"; break; fi
done
if [ -z "$node_inc" ]; then
  echo "windows-cross: Node headers (node_api.h) not found under $node_prefix/include/node or /usr/include/node" >&2
  exit 3
fi
napi_inc="$repo/node_modules/node-addon-api"
if [ ! -f "$napi_inc/napi.h" ]; then
  echo "windows-cross: node-addon-api missing at $napi_inc; run npm ci" >&2
  exit 3
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "windows-cross: FAIL: $*" >&2; failures=$((failures + 1)); }

# --- 1. C++ syntax-only cross compile -------------------------------------------------------
# Same defines the Windows build uses (binding.gyp/CMakeLists.txt conditions for Windows).
cxx_flags=(-std=c++17 -fsyntax-only -Wall -Wextra -Werror
  -D_WIN32_WINNT=0x0A00 -DWIN32_LEAN_AND_MEAN -DNOMINMAX -DNAPI_VERSION=8 -DNAPI_CPP_EXCEPTIONS
  -DBUILDING_NODE_EXTENSION -DNODE_GYP_MODULE_NAME=gpa_native
  -isystem "$node_inc" -isystem "$napi_inc"
  -I "$src_root/native/src" -I "$src_root/native/src/windows" -I "$src_root/native/bpf/windows")
shopt -s nullglob
cxx_sources=("$src_root"/native/src/windows/*.cc "$src_root"/native/src/*.cc)
if [ "${#cxx_sources[@]}" -eq 0 ]; then fail "no Windows C++ sources under $src_root/native/src"; fi
for f in "${cxx_sources[@]}"; do
  if "$cxx" "${cxx_flags[@]}" "$f" 2>"$work/cxx.err"; then
    echo "windows-cross: ok   $cxx -fsyntax-only ${f#"$src_root"/}"
  else
    cat "$work/cxx.err" >&2
    fail "$cxx -fsyntax-only ${f#"$src_root"/}"
  fi
done

# --- 2. BPF program ---------------------------------------------------------------------------
bpf_dir="$src_root/native/bpf/windows"
bpf_obj="$work/redirect_win.bpf.o"
if clang -O2 -g -target bpf -Wall -Werror -ffreestanding -I "$bpf_dir" \
  -c "$bpf_dir/redirect_win.bpf.c" -o "$bpf_obj" 2>"$work/bpf.err"; then
  echo "windows-cross: ok   clang -target bpf native/bpf/windows/redirect_win.bpf.c"
  sections="$(llvm-objdump -h "$bpf_obj")"
  for s in cgroup/connect4 .maps license .BTF; do
    grep -qF " $s " <<<"$sections" || fail "section $s missing from redirect_win.bpf.o"
  done
  # Helper ids actually called vs. the ones efw_minimal.h declares (map lookup/update,
  # pid_tgid, logon_id, is_admin, set_redirect_context).
  calls="$(llvm-objdump -d "$bpf_obj" | sed -n 's/.*\tcall \([0-9]*\)$/\1/p' | sort -un | tr '\n' ' ')"
  for id in $calls; do
    case "$id" in 1|2|19|20|21|65537) ;; *) fail "unexpected helper id $id in redirect_win.bpf.o" ;; esac
  done
  for id in 19 20 21 65537; do
    grep -qw "$id" <<<"$calls" || fail "helper id $id not called by redirect_win.bpf.o"
  done
  echo "windows-cross: ok   helper ids called: $calls"
else
  cat "$work/bpf.err" >&2
  fail "clang -target bpf native/bpf/windows/redirect_win.bpf.c"
fi

# --- 3. Struct layouts: BPF vs x64 Windows ------------------------------------------------------
probe="$src_root/test/windows/layout_probe.c"
ir_layout() { # $1 = clang target; prints the gpa_layout numbers space-separated
  clang -target "$1" -ffreestanding -O2 -S -emit-llvm -I "$bpf_dir" "$probe" -o - |
    sed -n 's/^@gpa_layout = .*constant \[[0-9]* x i64\] \[\(.*\)\].*/\1/p' | sed 's/i64 //g; s/,//g'
}
if layout_bpf="$(ir_layout bpf 2>"$work/l.err")" && [ -n "$layout_bpf" ] &&
  layout_msvc="$(ir_layout x86_64-pc-windows-msvc 2>>"$work/l.err")" && [ -n "$layout_msvc" ]; then
  layout_mingw="$(x86_64-w64-mingw32-gcc -x c -O2 -S -I "$bpf_dir" "$probe" -o - 2>>"$work/l.err" |
    awk '/^gpa_layout:/{on=1;next} on&&/\.quad/{printf "%s ", $2; next} on&&!/\.quad/{on=0}' |
    sed 's/ $//' || true)"
  if [ "$layout_bpf" != "$layout_msvc" ]; then
    fail "struct layout differs: bpf [$layout_bpf] vs x86_64-pc-windows-msvc [$layout_msvc]"
  elif [ "$layout_bpf" != "$layout_mingw" ]; then
    fail "struct layout differs: bpf [$layout_bpf] vs x86_64-w64-mingw32 [$layout_mingw]"
  else
    echo "windows-cross: ok   layouts agree (bpf = msvc x64 = mingw x64): $(wc -w <<<"$layout_bpf") values"
  fi
else
  cat "$work/l.err" >&2
  fail "layout probe test/windows/layout_probe.c did not compile for every target"
fi

if [ "$failures" -gt 0 ]; then
  echo "windows-cross: $failures check(s) failed" >&2
  exit 1
fi
echo "windows-cross: all checks passed"

if [ "$checks_only" = 0 ]; then
  # The suite re-runs the checks and proves each fails on an injected error.
  cd "$repo"
  GPA_REQUIRE_WINDOWS_CROSS=1 node scripts/run-tests.mjs windows/cross-compile
fi
