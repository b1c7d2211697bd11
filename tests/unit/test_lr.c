/* Learning-rate schedules: warm-up, cosine/linear/constant, and WSD (warm-up, stable, decay) with
 * both decay shapes at the points that define it, decay_start overriding decay_fraction, and the
 * branching property the baseline frontier relies on. */
#include "sprout/config.h"
#include "sprout/core.h"
#include "sprout/train.h"
#include "testutil.h"

#include <math.h>
#include <string.h>

static int close_to(double a, double b) {
    return fabs(a - b) <= 1e-12 * fmax(1.0, fabs(b));
}

static void set(sp_config *c, const char *kv, tu_ctx *t) {
    sp_err err = {0};
    tu_check(t, sp_cfg_set(c, kv, &err) == SP_OK, "--set %s: %s", kv, err.msg);
}

int main(void) {
    tu_ctx t = {0};
    sp_config c;
    sp_cfg_defaults(&c);
    set(&c, "train.steps=1000", &t);
    set(&c, "train.warmup_steps=20", &t);
    set(&c, "train.lr=1e-3", &t);
    set(&c, "train.min_lr=1e-4", &t);
    set(&c, "train.schedule=wsd", &t);
    const double lr = 1e-3, lo = 1e-4;

    /* warm-up: linear from lr/warm to lr */
    tu_check(&t, close_to(sp_lr_at(&c, 0), lr / 20), "wsd warm-up step 0: %g", sp_lr_at(&c, 0));
    tu_check(&t, close_to(sp_lr_at(&c, 19), lr), "wsd warm-up end: %g", sp_lr_at(&c, 19));
    /* default decay_fraction 0.2: stable through step 799, decay over 800..999 */
    tu_check(&t, sp_lr_decay_start(&c) == 800, "decay start %lld",
             (long long)sp_lr_decay_start(&c));
    tu_check(&t, close_to(sp_lr_at(&c, 20), lr) && close_to(sp_lr_at(&c, 799), lr),
             "wsd stable: %g %g", sp_lr_at(&c, 20), sp_lr_at(&c, 799));
    /* linear: r = (s + 1 - 800) / 200 */
    tu_check(&t, close_to(sp_lr_at(&c, 800), lo + (1.0 - 1.0 / 200) * (lr - lo)),
             "wsd linear decay start: %g", sp_lr_at(&c, 800));
    tu_check(&t, close_to(sp_lr_at(&c, 899), lo + 0.5 * (lr - lo)), "wsd linear mid: %g",
             sp_lr_at(&c, 899));
    tu_check(&t, close_to(sp_lr_at(&c, 999), lo), "wsd linear end: %g", sp_lr_at(&c, 999));
    /* sqrt: 1 - sqrt(r) */
    set(&c, "train.decay_shape=sqrt", &t);
    tu_check(&t, close_to(sp_lr_at(&c, 799), lr), "wsd sqrt stable: %g", sp_lr_at(&c, 799));
    tu_check(&t, close_to(sp_lr_at(&c, 800), lo + (1.0 - sqrt(1.0 / 200)) * (lr - lo)),
             "wsd sqrt decay start: %g", sp_lr_at(&c, 800));
    tu_check(&t, close_to(sp_lr_at(&c, 849), lo + 0.5 * (lr - lo)), "wsd sqrt quarter: %g",
             sp_lr_at(&c, 849));
    tu_check(&t, close_to(sp_lr_at(&c, 999), lo), "wsd sqrt end: %g", sp_lr_at(&c, 999));
    for (int64_t s = 800; s < 999; s++)
        if (!(sp_lr_at(&c, s) > sp_lr_at(&c, s + 1))) {
            tu_check(&t, 0, "wsd sqrt not decreasing at step %lld", (long long)s);
            break;
        }

    /* decay_fraction and decay_start */
    set(&c, "train.decay_shape=linear", &t);
    set(&c, "train.decay_fraction=0.5", &t);
    tu_check(&t, sp_lr_decay_start(&c) == 500, "decay_fraction 0.5: %lld",
             (long long)sp_lr_decay_start(&c));
    set(&c, "train.decay_fraction=1", &t);
    tu_check(&t, sp_lr_decay_start(&c) == 20, "decay_fraction 1 starts after the warm-up: %lld",
             (long long)sp_lr_decay_start(&c));
    set(&c, "train.decay_fraction=0", &t);
    tu_check(&t, sp_lr_decay_start(&c) == 1000 && close_to(sp_lr_at(&c, 999), lr),
             "decay_fraction 0 never decays");
    set(&c, "train.decay_start=600", &t);
    tu_check(&t,
             sp_lr_decay_start(&c) == 600 && close_to(sp_lr_at(&c, 599), lr) &&
                 close_to(sp_lr_at(&c, 999), lo),
             "decay_start 600 overrides decay_fraction");

    /* a cooldown branched at step S from a long stable run follows, step for step, the run
     * configured with that end from the start: the schedule before S does not see the end */
    sp_config stable, branch;
    sp_cfg_defaults(&stable), sp_cfg_defaults(&branch);
    const char *common[] = {"train.warmup_steps=20", "train.lr=1e-3", "train.min_lr=0",
                            "train.schedule=wsd"};
    for (int i = 0; i < 4; i++) set(&stable, common[i], &t), set(&branch, common[i], &t);
    set(&stable, "train.steps=100000", &t);
    set(&branch, "train.steps=700", &t);
    set(&branch, "train.decay_start=500", &t);
    int same = 1;
    for (int64_t s = 0; s < 500; s++) same &= sp_lr_at(&stable, s) == sp_lr_at(&branch, s);
    tu_check(&t, same, "stable and branched schedules agree before the branch point");
    tu_check(&t, sp_lr_at(&branch, 699) == 0.0, "branch ends at min_lr: %g",
             sp_lr_at(&branch, 699));

    /* the other schedules keep their values */
    set(&c, "train.decay_start=-1", &t);
    set(&c, "train.schedule=cosine", &t);
    tu_check(&t,
             close_to(sp_lr_at(&c, 20), lr) && close_to(sp_lr_at(&c, 510), lo + 0.5 * (lr - lo)),
             "cosine: %g %g", sp_lr_at(&c, 20), sp_lr_at(&c, 510));
    set(&c, "train.schedule=linear", &t);
    tu_check(&t, close_to(sp_lr_at(&c, 510), lo + 0.5 * (lr - lo)), "linear: %g",
             sp_lr_at(&c, 510));
    set(&c, "train.schedule=constant", &t);
    tu_check(&t, close_to(sp_lr_at(&c, 999), lr), "constant: %g", sp_lr_at(&c, 999));

    /* bad values name the key */
    sp_err err = {0};
    set(&c, "train.schedule=wsd", &t);
    set(&c, "train.decay_start=10", &t);
    int rc = sp_cfg_validate(&c, &err);
    tu_check(&t, rc == SP_EINPUT && strstr(err.msg, "train.decay_start"),
             "decay_start in warm-up: %s", err.msg);
    rc = sp_cfg_set(&c, "train.decay_shape=cosine", &err);
    tu_check(&t, rc == SP_EINPUT && strstr(err.msg, "train.decay_shape"), "bad shape: %s", err.msg);
    rc = sp_cfg_set(&c, "train.decay_fraction=1.5", &err);
    tu_check(&t, rc == SP_EINPUT && strstr(err.msg, "train.decay_fraction"), "bad fraction: %s",
             err.msg);
    sp_cfg_free(&c), sp_cfg_free(&stable), sp_cfg_free(&branch);
    return tu_finish(&t, "unit_lr");
}
