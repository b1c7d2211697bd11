# MPI handle hygiene on 4 ranks
add_executable(sp_mpi_handles ${CMAKE_CURRENT_SOURCE_DIR}/mpi_handles.c)
target_link_libraries(sp_mpi_handles PRIVATE sp_testutil)
sp_add_mpi_test(mpi_handles_np4 4 $<TARGET_FILE:sp_mpi_handles>)
