#!/usr/bin/env nextflow
/*
 * diffreg-nf: diffusion-model based deformable registration, reproduced.
 * Thin entry: the completion handlers, then the help text or the launch check (`diffreg launch`,
 * before any task: subworkflows/local/pipeline_initialisation), then workflows/diffreg.nf on what
 * the launch lists.
 */
nextflow.enable.dsl = 2

include { DIFFREG                                           } from './workflows/diffreg'
include { PIPELINE_INITIALISATION; PIPELINE_COMPLETION      } from './subworkflows/local/pipeline_initialisation'

workflow {
    PIPELINE_COMPLETION()       // first: a refused launch gets its runs.tsv row too
    PIPELINE_INITIALISATION()
    // the launch map, not a channel: DIFFREG's shape depends on it (the value is bound already, no wait)
    def launch = PIPELINE_INITIALISATION.out.launch.val
    if (launch) DIFFREG(launch)
}
