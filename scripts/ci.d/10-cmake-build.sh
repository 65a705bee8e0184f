#!/usr/bin/env bash
# Second build path: build the addon and the BPF object with cmake-js from CMakeLists.txt, then run
# the redirector tests against that build (lib/redirector honours GPA_ADDON_PATH and finds the BPF
# object next to it in build-cmake/bpf/).
set -euo pipefail
cd "$(dirname "$0")/../.."
nodedir="${npm_config_nodedir:-$(dirname "$(dirname "$(command -v node)")")}"
rm -rf build-cmake
npx cmake-js build --out build-cmake --directory . ${nodedir:+--CDCMAKE_JS_INC="$nodedir/include/node"} >/dev/null
test -f build-cmake/Release/gpa_native.node
test -f build-cmake/bpf/redirect.bpf.o
export GPA_ADDON_PATH="$PWD/build-cmake/Release/gpa_native.node"
export REQUIRE_EBPF=1
node scripts/run-tests.mjs redirector
