# Distributed growth equals single-rank growth bit for bit (weights, AdamW m and v, step counts):
# the redistribution engine across pp x dp layout changes, every depth operator, 2 -> 8 and
# 4 -> 8 blocks, plus identity maps (pipeline re-balancing). Arguments: OLD_PP NEW_PP.
add_executable(sp_mpi_growth ${CMAKE_CURRENT_SOURCE_DIR}/mpi_growth.c)
target_link_libraries(sp_mpi_growth PRIVATE sp_testutil)
sp_add_mpi_test(mpi_growth_1x4_4x1 4 $<TARGET_FILE:sp_mpi_growth> 1 4)
sp_add_mpi_test(mpi_growth_2x2_4x1 4 $<TARGET_FILE:sp_mpi_growth> 2 4)
sp_add_mpi_test(mpi_growth_4x1_2x2 4 $<TARGET_FILE:sp_mpi_growth> 4 2)
sp_add_mpi_test(mpi_growth_4x1_1x4 4 $<TARGET_FILE:sp_mpi_growth> 4 1)
sp_add_mpi_test(mpi_growth_2x2_2x2 4 $<TARGET_FILE:sp_mpi_growth> 2 2)
sp_add_mpi_test(mpi_growth_2x1_2x1 2 $<TARGET_FILE:sp_mpi_growth> 2 2)
sp_add_mpi_test(mpi_growth_1x2_2x1 2 $<TARGET_FILE:sp_mpi_growth> 1 2)
# the single-case form of the program
sp_add_mpi_test(mpi_growth_zero_4x1_2x2 4 $<TARGET_FILE:sp_mpi_growth> 4 2 zero 3 3)
# the engine built with 1000-float chunks, so that the split of messages above INT_MAX floats
# runs on this small model (its own copy of redist.c takes precedence over the library's)
add_executable(sp_mpi_growth_chunked ${CMAKE_CURRENT_SOURCE_DIR}/mpi_growth.c
               ${CMAKE_SOURCE_DIR}/src/parallel/redist.c)
target_compile_definitions(sp_mpi_growth_chunked PRIVATE SP_REDIST_CHUNK=1000)
target_link_libraries(sp_mpi_growth_chunked PRIVATE sp_testutil)
sp_add_mpi_test(mpi_growth_chunked_2x2_4x1 4 $<TARGET_FILE:sp_mpi_growth_chunked> 2 4)
