// 3D subject -> 2D subject (every image and label map cut at one slice), for 2D tasks on 3D data.
process EXTRACT_SLICES {
    tag "${meta.id}"
    label 'process_single'

    input:
    tuple val(meta), path(files, stageAs: 'in/*')

    output:
    tuple val(meta), path('slices/*.nii.gz'), emit: subject
    path 'versions.yml'                     , emit: versions

    script:
    """
    diffreg extract-slices --in-dir in --out-dir slices --slice ${params.experiment_slice}
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        diffreg: \$(diffreg --version | cut -d" " -f2)
    END_VERSIONS
    """

    stub:
    """
    mkdir -p slices && for f in in/*.nii.gz; do touch slices/\$(basename \$f); done
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        diffreg: \$(diffreg --version | cut -d" " -f2)
    END_VERSIONS
    """
}
