{
  "targets": [
    {
      "target_name": "fedseg_native",
      "sources": [
        "src/addon.c",
        "src/conv3d.c",
        "src/gemm.c",
        "src/movement.c",
        "src/pool3d.c",
        "src/reduce.c",
        "src/thread_pool.c"
      ],
      "conditions": [
        ["OS!='win'", {
          "cflags": ["-O3", "-std=gnu11", "-fno-math-errno", "-Wall", "-Wextra", "-Wno-unused-parameter"],
          "libraries": ["-lpthread"],
          "xcode_settings": {
            "OTHER_CFLAGS": ["-O3", "-std=gnu11", "-fno-math-errno"]
          }
        }],
        ["OS=='win'", {
          "msvs_settings": {
            "VCCLCompilerTool": {
              "Optimization": 2,
              "FavorSizeOrSpeed": 1,
              "InlineFunctionExpansion": 2,
              "FloatingPointModel": 0,
              "AdditionalOptions": ["/std:c11", "/O2", "/Oi"]
            }
          }
        }]
      ]
    }
  ]
}
