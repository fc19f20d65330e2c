// One self-contained HTML report: tables, qualitative figure, Dice distribution.
process REPORT {
    label 'process_single'

    input:
    path tables
    path registrations, stageAs: 'registrations/*'
    path images, stageAs: 'images/?/*'
    path label_names
    path experiments, stageAs: 'experiments/*'

    output:
    path 'index.html'  , emit: html

    script:
    def names = label_names.name != 'NO_FILE' ? "--label-names ${label_names}" : ''
    def papers = experiments ? '--experiments experiments/*' : ''
    """
    diffreg report --tables ${tables} ${registrations ? '--registrations registrations/*' : ''} --images-dir images ${names} ${papers} \\
        --pipeline-info-href ../pipeline_info --out index.html
    """

    stub:
    """
    echo '<html></html>' > index.html
    """
}
