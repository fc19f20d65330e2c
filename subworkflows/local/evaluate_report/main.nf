// Every registration -> metrics -> tables -> one HTML report.
include { EVALUATE } from '../../../modules/local/evaluate'
include { TABULATE } from '../../../modules/local/tabulate'
include { REPORT   } from '../../../modules/local/report'

workflow EVALUATE_REPORT {
    take:
    registrations   // [meta, registration_dir, moving, fixed, moving_labels, fixed_labels]
    subjects        // [meta, [images]]
    qc              // preprocessing QC pictures
    label_names
    experiments     // folders written by EXPERIMENT_ARTIFACTS (may be empty)

    main:
    EVALUATE(registrations, label_names)
    TABULATE(EVALUATE.out.metrics.collect())
    REPORT(
        TABULATE.out.tables,
        registrations.map { it[1] }.collect(),
        subjects.flatMap { meta, files -> files }.mix(qc).collect(),
        label_names,
        experiments
    )

    emit:
    report   = REPORT.out.html
    versions = EVALUATE.out.versions.first().mix(TABULATE.out.versions, REPORT.out.versions)
}
