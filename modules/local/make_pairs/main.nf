// Forms one dataset's evaluation pairs from its samplesheet with a scheme from experiments/pairs/.
process MAKE_PAIRS {
    tag "${dataset}"
    label 'process_single'

    input:
    tuple val(dataset), path(samplesheet)

    output:
    tuple val(dataset), path('pairs.csv'), emit: csv

    script:
    def args = task.ext.args ?: ''
    """
    diffreg make-pairs --input ${samplesheet} --no-image-check ${args} --out pairs.csv
    """

    stub:
    """
    echo 'pair_id,moving_subject,fixed_subject' > pairs.csv
    echo 'sub-003_to_sub-004,sub-003,sub-004' >> pairs.csv
    """
}
