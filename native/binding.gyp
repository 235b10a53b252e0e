{
  "variables": {
    "unix_cflags": ["-O3", "-std=gnu11", "-fPIC", "-fno-math-errno", "-Wall", "-Wextra", "-Wno-unused-parameter"],
    "msvc_cflags": ["/std:c11", "/O2", "/Oi", "/fp:precise"]
  },
  "target_defaults": {
    "conditions": [
      ["OS!='win'", {
        "cflags": ["<@(unix_cflags)"],
        "xcode_settings": {"OTHER_CFLAGS": ["<@(unix_cflags)"]}
      }],
      ["OS=='win'", {
        "msvs_settings": {"VCCLCompilerTool": {"Optimization": 2, "FavorSizeOrSpeed": 1, "AdditionalOptions": ["<@(msvc_cflags)"]}}
      }]
    ]
  },
  "targets": [
    {
      "target_name": "fedseg_avx2",
      "type": "static_library",
      "sources": ["src/gemm_avx2.c", "src/dropout_avx2.c"],
      "conditions": [
        ["target_arch=='x64' and OS!='win'", {
          "cflags": ["-mavx2", "-mfma"],
          "xcode_settings": {"OTHER_CFLAGS": ["<@(unix_cflags)", "-mavx2", "-mfma"]}
        }],
        ["target_arch=='x64' and OS=='win'", {
          "msvs_settings": {"VCCLCompilerTool": {"AdditionalOptions": ["<@(msvc_cflags)", "/arch:AVX2"]}}
        }]
      ]
    },
    {
      "target_name": "fedseg_avx512",
      "type": "static_library",
      "sources": ["src/gemm_avx512.c", "src/dropout_avx512.c"],
      "conditions": [
        ["target_arch=='x64' and OS!='win'", {
          "cflags": ["-mavx512f", "-mavx2", "-mfma"],
          "xcode_settings": {"OTHER_CFLAGS": ["<@(unix_cflags)", "-mavx512f", "-mavx2", "-mfma"]}
        }],
        ["target_arch=='x64' and OS=='win'", {
          "msvs_settings": {"VCCLCompilerTool": {"AdditionalOptions": ["<@(msvc_cflags)", "/arch:AVX512"]}}
        }]
      ]
    },
    {
      "target_name": "fedseg_native",
      "dependencies": ["fedseg_avx2", "fedseg_avx512"],
      "sources": [
        "src/addon.c",
        "src/conv3d.c",
        "src/dropout.c",
        "src/gemm.c",
        "src/movement.c",
        "src/pool3d.c",
        "src/reduce.c",
        "src/thread_pool.c"
      ],
      "conditions": [
        ["OS!='win'", {"libraries": ["-lpthread"]}]
      ]
    }
  ]
}
