/*
 * The whole DAG, top to bottom:
 *   samplesheet or TOY_DATA -> PREPROCESS -> MAKE_PAIRS
 *   -> TRAIN -> REGISTER (learned methods)  +  BASELINE (SyN, NiftyReg, ...)
 *   -> EVALUATE -> TABULATE -> REPORT
 * and, for each paper of --papers, EXPERIMENT: its tables and figures beside the paper's numbers.
 */
include { PREPARE_DATA    } from '../subworkflows/local/prepare_data'
include { TRAIN_REGISTER  } from '../subworkflows/local/train_register'
include { BASELINES       } from '../subworkflows/local/baselines'
include { EVALUATE_REPORT } from '../subworkflows/local/evaluate_report'
include { EXPERIMENT      } from '../subworkflows/local/experiment'

def splitList(value) { value ? value.toString().tokenize(',').collect { it.trim() }.findAll { it && it != 'none' } : [] }

workflow DIFFREG {
    PREPARE_DATA()

    // Pairs name subjects; the files come from the preprocessed subjects, picked by modality.
    def pick = { files, suffix -> files.find { it.name.endsWith("_${suffix}.nii.gz") } }
    // a frame's own label map if the subject has one per modality, else the subject's
    def pickLabels = { files, modality -> pick(files, "${modality}_labels") ?: pick(files, 'labels') }
    ch_by_id = PREPARE_DATA.out.subjects.map { meta, files -> [meta.id, files] }
    ch_pairs = PREPARE_DATA.out.pairs
        .splitCsv(header: true)
        .map { row -> [row.moving_subject, row] }
        .combine(ch_by_id, by: 0)
        .map { mid, row, mfiles -> [row.fixed_subject, row, mfiles] }
        .combine(ch_by_id, by: 0)
        .map { fid, row, mfiles, ffiles ->
            def meta = [id: row.pair_id, moving: row.moving_subject, fixed: row.fixed_subject]
            [meta, pick(mfiles, params.moving_modality), pick(ffiles, params.fixed_modality),
             pickLabels(mfiles, params.moving_modality), pickLabels(ffiles, params.fixed_modality)]
        }

    ch_registrations = Channel.empty()
    methods = splitList(params.methods)
    if (methods) {
        TRAIN_REGISTER(PREPARE_DATA.out.subjects, ch_pairs, methods)
        ch_registrations = ch_registrations.mix(TRAIN_REGISTER.out.registrations)
    }
    baselines = splitList(params.baselines)
    if (baselines) {
        BASELINES(ch_pairs, baselines)
        ch_registrations = ch_registrations.mix(BASELINES.out.registrations)
    }
    ch_experiments = Channel.empty()
    papers = splitList(params.papers)
    if (papers.size() > 1) error "--papers: one paper per run for now (got ${papers.join(', ')})"
    if (papers) {
        EXPERIMENT(papers[0], PREPARE_DATA.out.subjects, PREPARE_DATA.out.pairs, PREPARE_DATA.out.label_names)
        ch_experiments = EXPERIMENT.out.artifacts
    }
    EVALUATE_REPORT(ch_registrations, PREPARE_DATA.out.subjects, PREPARE_DATA.out.qc, PREPARE_DATA.out.label_names,
                    ch_experiments.collect().ifEmpty([]))
}
