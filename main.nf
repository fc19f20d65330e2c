#!/usr/bin/env nextflow
/*
 * diffreg-nf: diffusion-model based deformable registration, reproduced.
 * Thin entry: print help or validate the parameters and the input, then run workflows/diffreg.nf.
 * Validation is our own (no nf-schema: plugins cannot be fetched offline) and runs before any task.
 */
nextflow.enable.dsl = 2

include { DIFFREG } from './workflows/diffreg'
include { standinDatasets } from './subworkflows/local/prepare_data'

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

def camelToSnake(String s) { s.replaceAll(/([A-Z])/, '_$1').toLowerCase().replace('-', '_') }

def validateParams() {
    def specs = [:]
    schemaParams().each { key, group -> specs.putAll(group.properties) }
    def unknown = params.keySet().findAll { !specs.containsKey(it) && !specs.containsKey(camelToSnake(it)) }
    if (unknown) {
        error "Unknown parameter(s): ${unknown.collect { '--' + it }.join(', ')} (see: nextflow run main.nf --help)"
    }
    specs.each { name, spec ->
        def v = params[name]
        if (v == null) return
        def types = spec.type instanceof List ? spec.type : [spec.type]
        def ok = types.any { t ->
            (t == 'string' && v instanceof CharSequence) ||
            (t == 'integer' && (v instanceof Integer || v instanceof Long)) ||
            (t == 'number' && v instanceof Number) ||
            (t == 'boolean' && v instanceof Boolean)
        }
        if (!ok) error "Parameter --${name}: expected ${types.findAll { it != 'null' }.join(' or ')}, got '${v}'"
    }
    if (!(params.toy_ndim in [2, 3])) error "Parameter --toy_ndim: must be 2 or 3, got ${params.toy_ndim}"
    if (!(params.device in ['auto', 'cpu', 'cuda'])) error "Parameter --device: must be auto, cpu or cuda, got '${params.device}'"
    if (!(params.experiment_profile in ['test', 'test_full', 'full'])) error "Parameter --experiment_profile: must be test, test_full or full, got '${params.experiment_profile}'"
    // ranges (the same as diffreg.methods.config.RANGES; lr <= 1: Adam moves every weight by about lr per step)
    def num = { name -> params[name] == null ? null : params[name] as double }
    def finite = { double x -> !Double.isNaN(x) && !Double.isInfinite(x) }
    if (params.train_iterations != null && params.train_iterations < 1) error "Parameter --train_iterations: must be an integer >= 1, got ${params.train_iterations}"
    if (!(params.checkpoint_every instanceof Integer) || params.checkpoint_every < 1) error "Parameter --checkpoint_every: must be an integer >= 1, got ${params.checkpoint_every}"
    if (!(params.seeds instanceof Integer) || params.seeds < 1 || params.seeds > 100) error "Parameter --seeds: must be an integer in [1, 100], got ${params.seeds}"
    if (params.batch_size != null && params.batch_size < 1) error "Parameter --batch_size: must be an integer >= 1, got ${params.batch_size}"
    if (num('learning_rate') != null && !(finite(num('learning_rate')) && num('learning_rate') > 0 && num('learning_rate') <= 1)) error "Parameter --learning_rate: must be a number in (0, 1] (Adam moves every weight by about lr per step), got ${params.learning_rate}"
    if (num('lambda_reg') != null && !(finite(num('lambda_reg')) && num('lambda_reg') >= 0)) error "Parameter --lambda_reg: must be a finite number >= 0, got ${params.lambda_reg}"
    if (params.toy_subjects != null && params.toy_subjects < 3) error "Parameter --toy_subjects: must be an integer >= 3 (2 test, 1 train), got ${params.toy_subjects}"
    if (params.toy_size != null && !(params.toy_size >= 16 && params.toy_size <= 256)) error "Parameter --toy_size: must be an integer between 16 and 256, got ${params.toy_size}"
    if (params.standin_subjects != null && params.standin_subjects < 3) error "Parameter --standin_subjects: must be an integer >= 3 (2 test, 1 train), got ${params.standin_subjects}"
    if (params.standin_size != null && !(params.standin_size >= 16 && params.standin_size <= 256)) error "Parameter --standin_size: must be an integer between 16 and 256, got ${params.standin_size}"
    if (params.max_pairs != null && params.max_pairs < 1) error "Parameter --max_pairs: must be an integer >= 1, got ${params.max_pairs}"
    if (params.seed != null && !(params.seed >= 0 && params.seed < 4294967296L)) error "Parameter --seed: must be an integer in [0, 2^32), got ${params.seed}"
    if (!params.input) {   // the embedded toy data (diffreg.data.toy); a sheet's modalities: validateSamplesheet
        ['moving_modality', 'fixed_modality'].each { p ->
            if (!(params[p] in toyModalities())) error "Parameter --${p}: '${params[p]}' is no modality of the embedded toy data (modalities: ${toyModalities().join(', ')})"
        }
    }
    checkRegistered('methods', 'methods', 'METHODS')
    checkRegistered('baselines', 'baselines', 'BASELINES')
    paperFiles()   // stops on an unknown paper
    checkArtifacts()
    specs.each { name, spec ->
        if (spec.format == 'file-path' && params[name] && !file(params[name]).exists()) error "Parameter --${name}: file not found: ${params[name]}"
    }
    ['input', 'reference', 'label_names'].each { name ->
        if (params[name] && !file(params[name]).exists()) error "Parameter --${name}: file not found: ${params[name]}"
    }
    if (params.label_names) {
        def names
        try { names = strictJson(params.label_names) }
        catch (Exception e) { error "Parameter --label_names: ${params.label_names}: invalid JSON (${e.message?.readLines()?.getAt(0)})" }
        if (!(names instanceof Map) || !names.keySet().every { it ==~ /-?\d+/ })
            error "Parameter --label_names: ${params.label_names}: expected a JSON object of label value -> name, e.g. {\"1\": \"CSF\"}"
    }
}

// the images `diffreg toy-data` writes per subject (tests/reliability/test_pipeline_rejections.py checks it)
def toyModalities() { ['nbe', 'be', 't2'] }

// Strict JSON, as Python's json reads it later: Groovy's JsonSlurper accepts trailing commas
def strictJson(path) {
    def mapper = new com.fasterxml.jackson.databind.ObjectMapper()
        .enable(com.fasterxml.jackson.databind.DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
    return mapper.readValue(file(path).toFile(), Object)
}

// --methods / --baselines against the package's registries, read from their register("name") lines
// (no Python start: the check costs milliseconds); plugins (--plugins, DIFFREG_PLUGINS) may add names: then
// the plan checks them
def checkRegistered(String param, String folder, String registry) {
    if (System.getenv('DIFFREG_PLUGINS') || params.plugins) return
    def known = file("${projectDir}/src/diffreg/${folder}/*.py").collectMany { f ->
        (f.text =~ /${registry}\.register\("([A-Za-z0-9_.\-]+)"\)/).collect { it[1] } }.unique().sort()
    if (!known) return
    def bad = splitList(params[param]).collect { it.tokenize('=')[0] }.findAll { !(it in known) }
    if (bad) error "Parameter --${param}: unknown ${param == 'methods' ? 'method' : 'baseline'}(s) ${bad.join(', ')} (known: ${known.join(', ')})"
}

def splitList(value) { value ? value.toString().tokenize(',').collect { it.trim() }.findAll { it && it != 'none' } : [] }

// --papers: names of experiments/<name>.yaml, paths to YAML files, or all
// --artifacts: each selector names a paper run, one of its artifacts (PAPER:ARTIFACT) or an artifact
// some paper run has; checked here, before any task (diffreg plan applies it)
def checkArtifacts() {
    def sels = splitList(params.artifacts).findAll { it != 'all' }
    if (!sels) return
    def arts = paperFiles().collectEntries { f ->
        def doc = new org.yaml.snakeyaml.Yaml().load(f.text)
        [(f.baseName): (doc instanceof Map && doc.artifacts instanceof Map ? doc.artifacts.keySet() as List : [])] }
    sels.each { sel ->
        def (paper, art) = sel.contains(':') ? sel.tokenize(':') : [null, sel]
        def ok = paper ? (arts[paper] != null && art in arts[paper]) : (sel in arts.keySet() || arts.values().any { sel in it })
        if (!ok) error "Parameter --artifacts: '${sel}' is no paper run nor an artifact of one (papers: ${arts.keySet().join(', ') ?: 'none'}; give PAPER, PAPER:ARTIFACT or ARTIFACT)"
    }
}

def paperFiles() {
    // every experiments/*.yaml is a paper but baselines.yaml (the learning baselines' shared presets)
    def known = file("${projectDir}/experiments/*.yaml").collect { it.baseName }.findAll { it != 'baselines' }.sort()
    def names = splitList(params.papers)
    if (names == ['all']) names = known
    return names.collect { p ->
        def f = p.endsWith('.yaml') || p.endsWith('.yml') ? file(p) : file("${projectDir}/experiments/${p}.yaml")
        if (!f.exists()) error "Parameter --papers: no ${p.endsWith('.yaml') ? p : "experiments/${p}.yaml"} (known: ${known.join(', ')}, or a path to a YAML file)"
        f
    }
}

// user files a paper may depend on: the parameters of the schema's `weights` group that are set
def givenWeights() {
    def group = schemaParams()['weights']
    return group ? group.properties.keySet().findAll { params[it] }.collectEntries { [it, params[it].toString()] } : [:]
}

// Deep samplesheet checks (readable images, shapes, NaN voxels, label values) by the package itself,
// on the head node, so that a malformed samplesheet stops the run before any task is submitted.
// labelNames: the --label_names file that applies to this sheet (its keys are the allowed label values).
// main: the --input sheet, whose images the main path pairs by --moving_modality/--fixed_modality.
def validateSamplesheet(String path, labelNames = null, boolean main = false) {
    def cmd = ["${projectDir}/bin/diffreg", 'validate', '--input', path]
    if (labelNames) cmd += ['--label-names', file(labelNames.toString()).toString()]
    def proc = cmd.execute()
    def err = new StringBuffer()
    proc.consumeProcessErrorStream(err)
    def out = proc.inputStream.text
    proc.waitFor()
    if (proc.exitValue() != 0) {
        def msg = err.toString().readLines().findAll { it.trim() }
        error "Samplesheet ${path}: ${msg ? msg[-1].replaceFirst(/^diffreg: error: /, '') : 'validation failed'}"
    }
    def mods = out =~ /modalities (.*), \dD\s*$/
    if (main && mods.find()) {
        def known = mods.group(1).tokenize(',').collect { it.trim() }
        ['moving_modality', 'fixed_modality'].each { p ->
            if (!(params[p] in known)) error "Parameter --${p}: '${params[p]}' is no modality of ${path} (image_<modality> columns: ${known.join(', ')})"
        }
    }
    def m = out =~ /(\d)D\s*$/
    return m.find() ? m.group(1) as int : 3   // the images' dimensionality, from the summary line
}

// [[name, samplesheet or null, ndim]]: --input (or the embedded data) first, then --datasets
def datasetList() {
    // --label_names names the labels of the one dataset of --input (PREPARE_DATA uses it only then)
    def names = splitList(params.datasets) ? null : params.label_names
    def list = params.input ? [[params.dataset ?: 'input', params.input.toString(), validateSamplesheet(params.input.toString(), names, true)]]
                            : (toyNeeded() ? [['toy', null, params.toy_ndim as int]] : [])
    splitList(params.datasets).each { item ->
        def (name, sheet) = item.tokenize('=')
        if (!name || !sheet) error "Parameter --datasets: expected NAME=samplesheet.csv, got '${item}'"
        if (!(name ==~ /[a-z0-9_-]+/)) error "Parameter --datasets: dataset name '${name}' must be lower-case letters, digits, _ or -"
        if (list.any { it[0] == name }) error "Parameter --datasets: dataset '${name}' given twice"
        if (!file(sheet).exists()) error "Parameter --datasets: file not found: ${sheet}"
        list << [name, sheet, validateSamplesheet(sheet)]
    }
    def named = datasetArgs()
    def unknown = named.keySet().findAll { n -> !list.any { it[0] == n - ':2d' } }
    if (unknown) error "Parameter --dataset_args: no dataset ${unknown.join(', ')} (given: ${list.collect { it[0] }.join(', ')})"
    return list + standinDatasets(list, paperFiles(), params.standins)   // the papers' datasets nobody gave
}

// the embedded brain population (no --input): for the main path (--methods, --baselines), a launch
// with nothing else to run, or an artifact (of --artifacts) whose task falls back to dataset `toy`
// because its real dataset is not given; not for papers whose tasks all have stand-ins or data
def toyNeeded() {
    def papers = paperFiles()
    if (splitList(params.methods) || splitList(params.baselines) || !papers) return true
    def given = splitList(params.datasets).collect { it.tokenize('=')[0] }
    def sels = splitList(params.artifacts).findAll { it != 'all' }
    return papers.any { p ->
        def doc = new org.yaml.snakeyaml.Yaml().load(file(p).text)
        def tasks = doc instanceof Map && doc.tasks instanceof Map ? doc.tasks : [:]
        def arts = doc instanceof Map && doc.artifacts instanceof Map ? doc.artifacts : [:]
        arts.any { name, a ->
            if (sels && !(p.baseName in sels || "${p.baseName}:${name}".toString() in sels || name in sels)) return false
            def choice = a instanceof Map && a.tasks instanceof Map ? a.tasks : [:]
            def real = tasks[choice.real], toy = tasks[choice.toy]
            def onToy = { t -> t instanceof Map && t.dataset?.toString() == 'toy' }
            onToy(real) || (onToy(toy) && !(real instanceof Map && real.dataset?.toString() in given))
        }
    }
}

// --dataset_args 'acdc=--spacing 1.5 1.5 3.15 --shape 128 128 32;camus=--resize 112 112 --shape 128 128':
// each dataset's own `diffreg preprocess` flags (its paper's recipe, docs/datasets.md), after --preprocess_args
def datasetArgs() {
    def out = [:]
    (params.dataset_args ?: '').toString().tokenize(';').collect { it.trim() }.findAll { it }.each { item ->
        def at = item.indexOf('=')
        def name = at > 0 ? item.substring(0, at).trim() : ''
        if (!(name ==~ /[a-z0-9_-]+(:2d)?/)) error "Parameter --dataset_args: expected NAME=flags;NAME:2d=flags, got '${item}'"
        if (out.containsKey(name)) error "Parameter --dataset_args: dataset '${name}' given twice"
        out[name] = item.substring(at + 1).trim()
    }
    return out
}

// pipeline_info/runs.tsv: a row per launch that ended (done, failed or refused), naming its trace file. A
// launch killed with its Nextflow (kill -9, a lost node) never gets here: its partial trace has no row.
// onError and onComplete both call it (a failed task fires both): one row per run name.
def recordRun() {
    def info = file("${params.outdir}/pipeline_info")
    info.mkdirs()
    def ledger = info.resolve('runs.tsv')
    if (ledger.exists() && ledger.readLines().any { (it.split('\t', -1) as List)[1] == workflow.runName }) return
    def trace = workflow.session.config.navigate('trace.file')
    def error = (workflow.errorMessage ?: '').readLines().find { it.trim() } ?: ''
    def row = [trace ? file(trace.toString()).name : '', workflow.runName, workflow.sessionId, workflow.resume,
               workflow.start, workflow.complete ?: '', workflow.success ? 'success' : 'failed', error.replace('\t', ' ')]
    if (!ledger.exists()) ledger.text = 'trace\trun_name\tsession_id\tresumed\tstarted\tcompleted\tstatus\terror\n'
    ledger.append(row.join('\t') + '\n')
}

workflow {
    if (params.help) {
        log.info helpText()
        return
    }
    validateParams()
    DIFFREG(datasetList(), paperFiles(), givenWeights())
}

workflow.onError { recordRun() }

workflow.onComplete {
    recordRun()
    if (workflow.success) {
        log.info "diffreg-nf done: report at ${file(params.outdir).toAbsolutePath()}/report/index.html"
    }
}
