# node-gyp build of the addon (the default build path; scripts/build-native.mjs runs it).
# CMakeLists.txt builds the same sources with cmake-js; CI checks both (scripts/ci.d/10-cmake-build.sh).
{
  "targets": [
    {
      "target_name": "gpa_native",
      "sources": ["native/src/addon.cc"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "defines": ["NAPI_VERSION=8"],
      "conditions": [
        ["OS=='linux'", {
          "sources": [
            "native/src/linux/linux_backend.cc",
            "native/src/linux/linux_maps.cc",
            "native/src/linux/libbpf_log.cc",
            "native/src/posix/users.cc",
            "native/src/posix/listener.cc",
            "native/src/posix/client_io.cc",
            "native/src/posix/hmac_sha256.cc",
            "native/src/posix/proc_snapshot.cc",
            "native/src/posix/layout.cc"
          ],
          "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Werror"],
          "libraries": ["-lbpf", "-lelf", "-lz"]
        }],
        ["OS=='win'", {
          "sources": [
            "native/src/windows/efw_api.cc",
            "native/src/windows/logon_session.cc",
            "native/src/windows/win_redirector.cc",
            "native/src/windows/windows_backend.cc"
          ],
          "defines": ["WIN32_LEAN_AND_MEAN", "NOMINMAX"],
          "libraries": ["ws2_32.lib", "secur32.lib", "advapi32.lib", "version.lib"],
          "msvs_settings": {"VCCLCompilerTool": {"AdditionalOptions": ["/std:c++17", "/W4", "/WX"]}}
        }]
      ]
    }
  ]
}
