// Forms the evaluation pairs from the samplesheet with a scheme from experiments/pairs/.
process MAKE_PAIRS {
    tag "${scheme} ${split}"
    label 'process_single'

    input:
    path samplesheet
    val scheme
    val split

    output:
    path 'pairs.csv'   , emit: csv
    path 'versions.yml', emit: versions

    script:
    def limit = params.max_pairs ? "--max-pairs ${params.max_pairs}" : ''
    """
    diffreg make-pairs --input ${samplesheet} --scheme ${scheme} --split ${split} \
        --moving-modality ${params.moving_modality} --fixed-modality ${params.fixed_modality} \
        --no-image-check ${limit} --out pairs.csv
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        diffreg: \$(diffreg --version | cut -d" " -f2)
    END_VERSIONS
    """

    stub:
    """
    echo 'pair_id,moving_subject,fixed_subject' > pairs.csv
    echo 'sub-003_to_sub-004,sub-003,sub-004' >> pairs.csv
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        diffreg: \$(diffreg --version | cut -d" " -f2)
    END_VERSIONS
    """
}
