// The test pairs of a paper's protocol for one dataset: a pairing of experiments/pairs/<dataset>.yaml
// (a task's `pairs`), made from the dataset's samplesheet; `pairs` is '<pairing file>/<pairing>'.
process TASK_PAIRS {
    tag "${dataset} ${pairs}"
    label 'process_single'

    input:
    tuple val(dataset), val(pairs), path(samplesheet), path(config, stageAs: 'pairing.yaml')

    output:
    tuple val(dataset), val(pairs), path('pairs.csv'), emit: csv

    script:
    def args = task.ext.args ?: ''
    """
    diffreg make-pairs --input ${samplesheet} --no-image-check --config pairing.yaml --pairing ${pairs.tokenize('/')[-1]} ${args} --out pairs.csv
    """

    stub:
    """
    echo 'pair_id,moving_subject,fixed_subject' > pairs.csv
    """
}
