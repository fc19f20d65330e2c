// Forms one dataset's evaluation pairs from its samplesheet with a scheme from experiments/pairs/.
// The stub runs the real command too (a CSV of the samplesheet's subjects, seconds, no image read),
// so that a stub run registers, evaluates and tabulates the pairs a real run would.
// the sheet keeps the user's file name (spaces, any character): quoted for the shell
def makePairs(samplesheet, args) {
    "diffreg make-pairs --input '${samplesheet.toString().replace("'", "'\\''")}' --no-image-check ${args} --out pairs.csv"
}

process MAKE_PAIRS {
    tag "${dataset}"
    label 'process_single'

    input:
    tuple val(dataset), path(samplesheet)

    output:
    tuple val(dataset), path('pairs.csv'), emit: csv
    tuple val("${task.process}"), path('run.json'), emit: versions

    script:
    makePairs(samplesheet, task.ext.args ?: '')

    stub:
    makePairs(samplesheet, task.ext.args ?: '')
}
