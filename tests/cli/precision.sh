# Sourced by the CLI scripts that run in either precision (restart.sh, layout.sh, growth.sh):
# SP_PRECISION (fp32 by default, or bf16) becomes the run.precision of every run they start, and
# their tolerances across layouts come from here. A bf16 run skips (exit 77) where oneDNN has no
# native bf16 products.
PREC=${SP_PRECISION:-fp32}
case "$PREC" in fp32 | bf16) ;; *) echo "SP_PRECISION=$PREC: want fp32 or bf16"; exit 2 ;; esac
# Losses (XTOL) and final weights (WTOL) compared ACROSS layouts: in fp32 they differ only by
# the reduction order (1e-5). In bf16 every product rounds its inputs to bf16, so a different
# order of the fp32 sums before a product can flip a bf16 rounding (2^-8 relative), and the runs
# drift apart over the steps. Measured worst over 20 steps: losses 3.3e-5 (layout.sh), 6.2e-6
# (growth.sh), 3.7e-6 (restart.sh); weights 4.3e-3 (layout.sh), all of it in the key part of
# c_attn.bias (every other tensor within 1.9e-4): its gradient is exactly zero in exact
# arithmetic, and in bf16 its rounding noise is far above AdamW's eps, so every step moves it by
# about lr in a direction set by the noise alone (in fp32 the noise stays below eps). Bit-exact
# checks on one layout stay bit-exact in both precisions.
if [ "$PREC" = bf16 ]; then XTOL=2e-4 WTOL=1e-2; else XTOL=1e-5 WTOL=1e-5; fi
# prec_skip LOG RC: after a failed run, exit 77 when it failed because bf16 is refused here
prec_skip() {
  if [ "$2" = 2 ] && grep -q "run.precision: bf16 needs" "$1"; then
    echo "skipped: $(grep 'run.precision' "$1")"
    exit 77
  fi
}
# prec_active LOG: a run logged in LOG computed in the precision asked for
prec_active() {
  if [ "$PREC" = bf16 ] && ! grep -q "precision bf16: matrix products through oneDNN" "$1"; then
    echo "FAIL: SP_PRECISION=bf16 but the run in $1 did not compute in bf16"
    cat "$1"
    exit 1
  fi
}
