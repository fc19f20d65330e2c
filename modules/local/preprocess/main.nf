// One subject: affine alignment to the reference (ANTsPy), crop/pad, intensities to [0, 1].
// The reference is always passed: with --spacing in ext.args it only serves the alignment (the subject
// keeps its own field of view, cropped around its labels); a label lost on the way fails the task.
// extras (meta.extras names them: landmarks.csv, <modality>.rgb.nii.gz) are files only evaluation
// reads, in the voxel grid of the subject's images as given: copied as <subject>_<name> where that
// grid is kept (prealigned, no crop, resampling or slicing), left out otherwise (evaluation: NaN / grey).
process PREPROCESS {
    tag "${meta.dataset} ${meta.stem ?: meta.id}"
    label 'process_single'

    input:
    tuple val(meta), path(images, stageAs: 'image?/*'), path(labels, stageAs: 'labels?/*'), path(reference, stageAs: 'reference/*'), path(extras, stageAs: 'extra?/*')

    output:
    tuple val(meta), path('out/*.{nii.gz,csv}'), emit: subject
    path 'out/*.png'                     , emit: qc, optional: true
    tuple val("${task.process}"), path('out/run.json'), emit: versions

    script:
    def args = task.ext.args ?: ''
    def stem = meta.stem ?: meta.id     // <subject>_2d for the 2D subject of a NAME:2d recipe
    def names = (meta.modalities + meta.label_names).collect { "${stem}_${it}.nii.gz" }.join(' ')
    def same_grid = meta.prealigned && !(args =~ /--(shape|spacing|resize|extract-slice)\b/)
    def extra_files = extras instanceof List ? extras : [extras]
    // staged files keep the user's names (spaces, any character): each quoted for the shell
    def q = { fs -> (fs instanceof List ? fs : [fs]).collect { "'" + it.toString().replace("'", "'\\''") + "'" }.join(' ') }
    def copies = same_grid ? [meta.extras ?: [], extra_files].transpose().collect { name, f -> "cp -L '${f}' 'out/${stem}_${name}'" }.join('\n    ') : ''
    """
    diffreg preprocess --subject '${meta.id}' --images ${q(images)} --labels ${labels ? q(labels) : ''} \
        --reference ${q(reference)} --threads ${task.cpus} --names ${names} --outdir out ${args}${meta.prealigned ? ' --prealigned' : ''}
    ${copies}
    """

    stub:
    """
    mkdir -p out
    touch ${(meta.modalities + meta.label_names).collect { "out/${meta.stem ?: meta.id}_${it}.nii.gz" }.join(' ')}
    echo '{}' > out/run.json
    """
}
