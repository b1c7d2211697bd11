# Sourced by the workstation scripts: Open MPI as root and more ranks than cores.
if [ "$(id -u)" = 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
export OMPI_MCA_rmaps_base_oversubscribe=1
# one BLAS thread per rank unless run.threads asks for more (sprout sets it per rank)
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
