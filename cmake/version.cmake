# Writes OUT (a header with SP_GIT_DESCRIBE) from `git describe` of SRC at build time; the header
# is rewritten only when the description changes, so an unchanged tree rebuilds nothing.
execute_process(COMMAND git -C "${SRC}" describe --always --dirty --tags
                OUTPUT_VARIABLE desc OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 OR desc STREQUAL "")
  set(desc "")
endif()
file(WRITE "${OUT}.new" "#define SP_GIT_DESCRIBE \"${desc}\"\n")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different "${OUT}.new" "${OUT}")
file(REMOVE "${OUT}.new")
