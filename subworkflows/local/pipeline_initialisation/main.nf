/*
 * Before and after the workflow, on the head node (nf-core's PIPELINE_INITIALISATION and
 * PIPELINE_COMPLETION): the help text or the launch check, which emits the launch map that DIFFREG
 * runs on; and what every launch leaves in pipeline_info/ when it ends (done, failed or refused).
 * No nf-schema: plugins cannot be fetched offline.
 */

import groovy.json.JsonSlurper

def schemaParams() {
    def schema = new JsonSlurper().parse(file("${projectDir}/nextflow_schema.json").toFile())
    def out = [:]
    schema['$defs'].each { key, group -> out[key] = group }
    return out
}

def helpText() {
    def lines = ["", "Usage: nextflow run main.nf -profile <test|standard|slurm,gpu|...> [--param value ...]", ""]
    schemaParams().each { key, group ->
        lines << "${group.title}:"
        group.properties.each { name, spec ->
            def dflt = spec.containsKey('default') ? " [default: ${spec.default}]" : ''
            lines << "  --${name.padRight(22)} ${spec.description}${dflt}"
        }
        lines << ''
    }
    return lines.join('\n')
}

// Every parameter, samplesheet and experiment YAML is checked by the package, once, on the head node
// (`diffreg launch`, src/diffreg/launch/): it writes launch.json (the datasets, papers, user files and
// the plan's flags), which is all the workflow reads. The first problem stops the run with one line.
def launchPlan() {
    def dir = java.nio.file.Files.createTempDirectory('diffreg-launch')
    try {
        def given = dir.resolve('params.json')
        given.text = groovy.json.JsonOutput.toJson(params.collectEntries { k, v ->
            [k, v == null || v instanceof Number || v instanceof Boolean ? v : v.toString()] })
        def out = dir.resolve('launch.json')
        def pb = new ProcessBuilder("${projectDir}/bin/diffreg".toString(), 'launch', '--params', given.toString(), '--out', out.toString())
        if (params.plugins) pb.environment().put('DIFFREG_PLUGINS', params.plugins.toString())
        // the test profiles' warm Python (docs/engine.md) when one runs; the check never starts one: a
        // -resume with every task cached needs none, and its imports would compete with the cache look-up
        if (params.task_server) pb.environment().putAll(DIFFREG_TASK_SERVER: '1', DIFFREG_TASK_SERVER_START: '0')
        def proc = pb.start()
        def err = new StringBuffer()
        proc.consumeProcessErrorStream(err)
        proc.inputStream.eachLine { log.info it }
        proc.waitFor()
        if (proc.exitValue() != 0) {
            def lines = err.toString().readLines().findAll { it.trim() }
            error(lines ? lines[-1].replaceFirst(/^diffreg: error: /, '') : "diffreg launch failed (exit ${proc.exitValue()})")
        }
        return new JsonSlurper().parse(out.toFile())
    } finally {
        dir.toFile().deleteDir()      // refused or not: no temporary folder left behind
    }
}

// A full disk: Nextflow's own error line says only "Failed to publish file: ... -- See log file
// for details" (or a task's exit status); the cause, "No space left on device", is in the session's
// error (java.nio's "SRC -> DEST: No space left on device", Python's "[Errno 28] ...: 'PATH'").
// One line naming it and the file that did not fit, or null for any other error.
def diskFullCause() {
    def text = [workflow.errorMessage, workflow.errorReport].findAll().join('\n')
    def line = text.readLines().find { it.contains('No space left on device') }
    if (!line) return null
    def m = line =~ /-> (\S+): No space left on device/
    def n = line =~ /No space left on device: '([^']+)'/
    def path = m.find() ? m.group(1) : n.find() ? n.group(1) : null
    return "No space left on device" + (path ? " writing ${path}" : '') +
        ": free space there (or give --outdir / -work-dir on a larger disk), then rerun with -resume"
}

// pipeline_info/runs.tsv: a row per launch that ended (done, failed or refused), naming its trace file. A
// launch killed with its Nextflow (kill -9, a lost node) never gets here: its partial trace has no row.
// onError and onComplete both call it (a failed task fires both): one row per run name. On a full
// disk the row may not fit either: said as a warning, not a second error.
def recordRun(String cause = null) {
    def info = file("${params.outdir}/pipeline_info")
    info.mkdirs()
    def ledger = info.resolve('runs.tsv')
    if (ledger.exists() && ledger.readLines().any { (it.split('\t', -1) as List)[1] == workflow.runName }) return
    def trace = workflow.session.config.navigate('trace.file')
    def error = cause ?: (workflow.errorMessage ?: '').readLines().find { it.trim() } ?: ''
    def row = [trace ? file(trace.toString()).name : '', workflow.runName, workflow.sessionId, workflow.resume,
               workflow.start, workflow.complete ?: '', workflow.success ? 'success' : 'failed', error.replace('\t', ' ')]
    try {
        if (!ledger.exists()) ledger.text = 'trace\trun_name\tsession_id\tresumed\tstarted\tcompleted\tstatus\terror\n'
        ledger.append(row.join('\t') + '\n')
    } catch (IOException e) {
        log.warn "could not add this run to ${ledger}: ${e.message}"
    }
}

// what onError and onComplete do (functions: a handler's closure defined in a workflow body loses
// `workflow` by the time it runs, a function of this file still reads it)
def pipelineFailed() { recordRun(diskFullCause()) }

def pipelineCompleted() {
    // after Nextflow's "Failed to publish file" lines (one per file that did not fit): the last error
    def cause = diskFullCause()
    if (cause) log.error cause
    recordRun(cause)
    if (workflow.success) {
        log.info "diffreg-nf done: report at ${file(params.outdir).toAbsolutePath()}/report/index.html"
    }
}

workflow PIPELINE_INITIALISATION {
    main:
    // --help: the text, and an empty launch map (nothing to run)
    def checked = [:]
    if (params.help) {
        log.info helpText()
    } else {
        checked = launchPlan()
    }

    emit:
    launch = checked    // the launch map (a value channel holding it, bound at once)
}

// Called before PIPELINE_INITIALISATION, so that a launch its check refuses gets its runs.tsv row too.
workflow PIPELINE_COMPLETION {
    main:
    workflow.onError { pipelineFailed() }
    workflow.onComplete { pipelineCompleted() }
}
