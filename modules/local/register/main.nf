// Registers every pair of one registration set with its trained model, loaded once: per pair a
// <label>__<pair> folder with the displacement, warped image and labels, and run.json.
process REGISTER {
    tag "${meta.label} (${pairs.size()} pairs)"
    label 'process_gpu'

    input:
    tuple val(meta), val(pairs), path(images, stageAs: 'images/*'), path(model), path(settings)

    output:
    tuple val(meta.label), path("${meta.label}__*", type: 'dir'), emit: registration
    tuple val("${task.process}"), path("${meta.label}__*/run.json"), emit: versions

    script:
    def args = task.ext.args ?: ''
    def own = settings.name != 'NO_FILE' ? "--settings ${settings}" : ''
    def quote = { v -> '"' + (v ?: '').toString().replace('"', '""') + '"' }
    def rows = pairs.collect { p -> [p.id, p.moving, p.fixed, p.moving_labels, p.fixed_labels].collect(quote).join(',') }
    """
    cat > pairs.csv <<'PAIRS'
id,moving,fixed,moving_labels,fixed_labels
${rows.join('\n')}
PAIRS
    diffreg register --model ${model} --name '${meta.label}' --pairs pairs.csv --images-dir images ${own} \\
        --threads ${task.cpus} ${args} --out .
    """

    stub:
    def dirs = pairs.collect { p -> "'${meta.label}__${p.id}'" }.join(' ')
    """
    for d in ${dirs}; do mkdir -p "\$d" && touch "\$d"/{disp,warped,warped_labels}.nii.gz && echo '{}' > "\$d/run.json"; done
    """
}
