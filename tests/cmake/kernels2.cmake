# The LLaMA / BERT kernels against the PyTorch references (tests/torch/check_kernels2.py): a
# driver runs each kernel on fixed inputs and writes inputs and results to HDF5 through the
# HDF5 high-level (H5LT) library, which only this driver uses. (The kernels' own finite-
# difference tests are unit_kernels and unit_kernels2.)
list(GET HDF5_C_LIBRARIES 0 sp_hdf5_first)
get_filename_component(sp_hdf5_dir ${sp_hdf5_first} DIRECTORY)
find_library(SP_HDF5_HL_LIBRARY NAMES hdf5_hl hdf5_openmpi_hl HINTS ${sp_hdf5_dir})
if(SP_HDF5_HL_LIBRARY)
  add_executable(sp_kernels2_dump ${CMAKE_CURRENT_SOURCE_DIR}/kernels2_dump.c)
  target_link_libraries(sp_kernels2_dump PRIVATE sprout_lib ${SP_HDF5_HL_LIBRARY})
  add_test(NAME torch_kernels2
           COMMAND sh -c "$<TARGET_FILE:sp_kernels2_dump> kernels2.h5 && /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/torch/check_kernels2.py kernels2.h5")
  set_tests_properties(torch_kernels2 PROPERTIES TIMEOUT 300 ENVIRONMENT "${SP_MPI_ENV}")
else()
  message(STATUS "HDF5 high-level library not found: torch_kernels2 is not built")
endif()
