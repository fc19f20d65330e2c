// The test pairs of a paper's protocol for one dataset: a pairing of experiments/pairs/<dataset>.yaml
// (a task's `pairs`), made from the dataset's samplesheet; `pairs` is '<pairing file>/<pairing>'.
// The stub runs the real command too (seconds, no image read): a stub run uses the protocol's pairs.
def taskPairs(samplesheet, pairs, args) {
    "diffreg make-pairs --input '${samplesheet.toString().replace("'", "'\\''")}' --no-image-check --config pairing.yaml --pairing ${pairs.tokenize('/')[-1]} ${args} --out pairs.csv"
}

process TASK_PAIRS {
    tag "${dataset} ${pairs}"
    label 'process_single'

    input:
    tuple val(dataset), val(pairs), path(samplesheet), path(config, stageAs: 'pairing.yaml')

    output:
    tuple val(dataset), val(pairs), path('pairs.csv'), emit: csv
    tuple val("${task.process}"), path('run.json')           , emit: versions

    script:
    taskPairs(samplesheet, pairs, task.ext.args ?: '')

    stub:
    taskPairs(samplesheet, pairs, task.ext.args ?: '')
}
