// Runs the library's path filter (ci/jenkins-library/vars/brainscanChanged.groovy) outside Jenkins,
// for ci/tests/test_path_filter.py: Groovy itself, with builds described in JSON standing in for
// currentBuild (Jenkins' CPS and sandbox are not here).
//   java -cp groovy.jar:groovy-json.jar groovy.ui.GroovyMain path_filter_harness.groovy VARS_FILE < spec.json
// spec: {"globs": {glob: [path...]}?, "scenarios": [{"globs": [...], "builds": [{"number", "result",
// "paths": [...]}, ...newest first]}]}; answer: {"matches": {glob: [matching paths]}, "results": [bool]}
import groovy.json.JsonOutput
import groovy.json.JsonSlurper
import org.codehaus.groovy.control.CompilerConfiguration
import org.codehaus.groovy.control.customizers.ImportCustomizer

// Jenkins imports @NonCPS by itself; any method annotation stands in for it here.
ImportCustomizer imports = new ImportCustomizer().addImport('NonCPS', 'java.lang.Deprecated')
CompilerConfiguration compiler = new CompilerConfiguration().addCompilationCustomizers(imports)
Binding binding = new Binding()
binding.setVariable('echo', { String message -> System.err.println(message) })
Script library = new GroovyShell(binding, compiler).parse(new File(args[0]))
Map spec = new JsonSlurper().parse(System.in) as Map

Map matches = [:]
spec.globs.each { String glob, List<String> paths ->
    String regex = library.globToRegex(glob)
    matches[glob] = paths.findAll { String path -> path.matches(regex) }
}

List<Boolean> results = spec.scenarios.collect { Map scenario ->
    List<Map> builds = scenario.builds.collect { Map build ->
        [number: build.number, result: build.result,
         changeSets: [[items: build.paths.collect { String path -> [affectedPaths: [path]] }]]]
    }
    builds.eachWithIndex { Map build, int index ->
        build.previousBuild = index + 1 < builds.size() ? builds[index + 1] : null
    }
    Map current = builds[0]
    current.previousSuccessfulBuild = builds.drop(1).find { Map build -> build.result == 'SUCCESS' }
    binding.setVariable('currentBuild', current)
    library.call(scenario.globs)
}
println(JsonOutput.toJson([matches: matches, results: results]))
