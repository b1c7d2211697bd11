# Checkpoint write failures: a full file system at each phase of a save (a tmpfs the test mounts;
# skipped where mounting is not permitted), on 1 and 2 ranks; run.out paths of 200 to 4000+
# characters under every launch path.
# sprout with its own copy of ckpt.c built without the file's space reservation, so that a full
# disk reaches the tensor writes themselves (the copy takes precedence over the library's)
add_executable(sprout_ckpt_noreserve ${CMAKE_SOURCE_DIR}/src/cli/main.c
               ${CMAKE_SOURCE_DIR}/src/io/ckpt.c)
target_compile_definitions(sprout_ckpt_noreserve PRIVATE SP_CKPT_NO_RESERVE)
target_link_libraries(sprout_ckpt_noreserve PRIVATE sprout_lib)
add_test(NAME ckpt_disk_full
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/disk_full.sh $<TARGET_FILE:sprout>
                 $<TARGET_FILE:sprout_ckpt_noreserve> ${MPIEXEC_EXECUTABLE} ${MPIEXEC_PREFLAGS})
set_tests_properties(ckpt_disk_full PROPERTIES TIMEOUT 900 PROCESSORS 2 SKIP_RETURN_CODE 77
                     ENVIRONMENT "${SP_MPI_ENV}")
sp_add_script_test(ckpt_long_paths long_paths.sh 900 MPI)
