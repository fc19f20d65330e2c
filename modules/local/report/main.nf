// One self-contained HTML report: tables, qualitative figure, Dice distribution, the papers'
// claims with their statistics, and the run's provenance (provenance.json, the trace, the software
// versions per process).
process REPORT {
    label 'process_single'

    input:
    path tables
    path registrations, stageAs: 'registrations/*'
    path images, stageAs: 'images/?/*'
    path label_names
    path experiments, stageAs: 'experiments/*'
    path provenance, stageAs: 'provenance.json'
    path software_versions, stageAs: 'software_versions.yml'

    output:
    path 'index.html'  , emit: html

    script:
    def names = label_names.name != 'NO_FILE' ? "--label-names ${label_names}" : ''
    def papers = experiments ? '--experiments experiments/*' : ''
    // links point into the published results folder (report/ beside tables/, experiments/, pipeline_info/)
    """
    diffreg report --tables ${tables} ${registrations ? '--registrations registrations/*' : ''} --images-dir images ${names} ${papers} \\
        --provenance ${provenance} --software-versions ${software_versions} --results-href .. --pipeline-info-href ../pipeline_info --out index.html
    """

    stub:
    """
    echo '<html></html>' > index.html
    """
}
