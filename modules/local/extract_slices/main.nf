// 3D subject -> 2D subject (every image and label map cut at one slice), for 2D tasks on 3D data.
process EXTRACT_SLICES {
    tag "${meta.id}"
    label 'process_single'

    input:
    tuple val(meta), path(files, stageAs: 'in/*')

    output:
    tuple val(meta), path('slices/*.nii.gz'), emit: subject
    tuple val("${task.process}"), path('slices/slices.json'), emit: versions   // its run.json, by another name

    script:
    def args = task.ext.args ?: ''
    """
    diffreg extract-slices --in-dir in --out-dir slices ${args}
    """

    stub:
    """
    mkdir -p slices && for f in in/*.nii.gz; do touch slices/\$(basename \$f); done
    echo '{}' > slices/slices.json
    """
}
