# The native kernels addon: build/Release/sae_kernels.node (built by scripts/build-native.mjs).
# Portable on purpose (node_modules may be copied between machines): no -march; the hot loops carry
# GCC target_clones (AVX2 + baseline, x86-64 glibc only), chosen at load time. No fast-math and no
# FMA contraction, so results are the same on every machine and for every thread count.
{
  'targets': [
    {
      'target_name': 'sae_kernels',
      'sources': ['native/addon.cc', 'native/dequant.cc', 'native/kernels.cc', 'native/pool.cc'],
      'dependencies': ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except_all"],
      'defines': ['NAPI_VERSION=8', 'NODE_ADDON_API_DISABLE_DEPRECATED'],
      'cflags_cc': ['-O3', '-fno-math-errno', '-ffp-contract=off', '-fvisibility=hidden'],
      'conditions': [
        ['OS=="mac"', {
          'xcode_settings': {
            'CLANG_CXX_LANGUAGE_STANDARD': 'c++17',
            'GCC_OPTIMIZATION_LEVEL': '3',
            'OTHER_CPLUSPLUSFLAGS': ['-fno-math-errno', '-ffp-contract=off', '-fvisibility=hidden'],
          },
        }],
        ['OS=="win"', {
          'msvs_settings': {
            'VCCLCompilerTool': {'AdditionalOptions': ['/std:c++17', '/fp:precise', '/O2']},
          },
        }],
      ],
    },
  ],
}
