/* The config's train.subnet and its apollo.* / raptr.* sections as the plain settings the
 * subnetwork methods resolve (src/growth/subnet.c). */
#include "sprout/growth.h"
#include "sprout/train.h"

int sp_subnet_resolve(const sp_config *cfg, sp_subnet *sn, sp_err *err) {
    const sp_subnet_settings c = {
        .method = cfg->train.subnet,
        .n_layer = (int)cfg->model.n_layer,
        .seed = cfg->train.seed,
        .steps = cfg->train.steps,
        .grows = cfg->growth_count > 0 || cfg->vcycle.levels > 1,
        .apollo_unique = cfg->apollo.unique,
        .apollo_boundaries = cfg->apollo.boundaries,
        .apollo_sampler = cfg->apollo.sampler,
        .apollo_map = cfg->apollo.map,
        .apollo_depth = cfg->apollo.depth,
        .raptr_lengths = cfg->raptr.lengths,
        .raptr_boundaries = cfg->raptr.boundaries,
        .raptr_fixed = cfg->raptr.fixed,
        .raptr_mode = cfg->raptr.mode,
        .raptr_scale = cfg->raptr.scale,
        .raptr_full_warmup_steps = cfg->raptr.full_warmup_steps,
    };
    return sp_subnet_setup(&c, sn, err);
}
