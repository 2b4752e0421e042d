# Warning flags as an interface target, linked privately by every ringbus target.
add_library(ringbus_warnings INTERFACE)
target_compile_options(ringbus_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wconversion -Wshadow -Wno-sign-conversion
  $<$<BOOL:${RINGBUS_WERROR}>:-Werror>)
