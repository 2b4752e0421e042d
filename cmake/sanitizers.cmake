# RINGBUS_SANITIZE=address builds everything with ASan+UBSan; =thread with TSan; =fuzz with
# ASan+UBSan and libFuzzer's coverage instrumentation (clang only: the `fuzz` preset, fuzz/).
if(RINGBUS_SANITIZE STREQUAL "fuzz")
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "RINGBUS_SANITIZE=fuzz needs clang (libFuzzer): use the 'fuzz' preset")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
elseif(RINGBUS_SANITIZE STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
elseif(RINGBUS_SANITIZE STREQUAL "thread")
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
elseif(NOT RINGBUS_SANITIZE STREQUAL "")
  message(FATAL_ERROR "RINGBUS_SANITIZE must be empty, 'address', 'thread' or 'fuzz', not '${RINGBUS_SANITIZE}'")
endif()
