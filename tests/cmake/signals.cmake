# Stop signals from process start to exit: sprout_points is sprout built with the test points of
# include/sprout/testpoint.h, so that a signal reaches a process at a known place (during
# MPI_Init, verify, load, after the stop checkpoint) without any dependence on timing.
add_executable(sprout_points ${CMAKE_SOURCE_DIR}/src/cli/main.c ${CMAKE_SOURCE_DIR}/src/train/run.c
               ${CMAKE_SOURCE_DIR}/src/train/resume.c
               ${CMAKE_CURRENT_SOURCE_DIR}/testpoint.c)
target_compile_definitions(sprout_points PRIVATE SP_TEST_POINTS)
target_link_libraries(sprout_points PRIVATE sprout_lib)
set_target_properties(sprout_points PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR})
add_test(NAME mpi_signals
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/signals.sh $<TARGET_FILE:sprout>
                 $<TARGET_FILE:sprout_points> ${MPIEXEC_EXECUTABLE} ${MPIEXEC_PREFLAGS})
set_tests_properties(mpi_signals PROPERTIES PROCESSORS 2 TIMEOUT 900 ENVIRONMENT "${SP_MPI_ENV}")
