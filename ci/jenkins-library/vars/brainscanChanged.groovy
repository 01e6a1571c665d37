// brainscanChanged(globs): the path filter of brainscan's pipelines. True when a file changed since
// the last successful build of this branch matches one of the Ant-style globs (`**` crosses
// folders, `*` stays within one, case-sensitive like git), or when the branch has no successful
// build yet. Jenkins' own `changeset` condition sees only the changes since the previous build:
// after a failed build, an unrelated commit would turn the branch green without rebuilding.

// The change log is nested (builds, change sets, commits, paths), hence the nested loops.
@SuppressWarnings('NestedForLoop')
boolean call(List<String> globs) {
    if (currentBuild.previousSuccessfulBuild == null) {
        return true
    }
    List<String> patterns = []
    for (String glob in globs) {
        patterns.add(globToRegex(glob))
    }
    def build = currentBuild
    while (build != null) {
        if (build.number != currentBuild.number && build.result == 'SUCCESS') {
            return false
        }
        for (changeSet in build.changeSets) {
            for (entry in changeSet.items) {
                for (String path in entry.affectedPaths) {
                    if (matchesAny(path, patterns)) {
                        echo "Path filter: ${path} changed (build ${build.number})"
                        return true
                    }
                }
            }
        }
        build = build.previousBuild
    }
    return false
}

@NonCPS
boolean matchesAny(String path, List<String> patterns) {
    for (String pattern in patterns) {
        if (path.matches(pattern)) {
            return true
        }
    }
    return false
}

// An Ant-style glob as a regular expression: `**` is any run of characters, `*` any run without
// a slash, everything else literal.
@NonCPS
String globToRegex(String glob) {
    StringBuilder regex = new StringBuilder()
    int index = 0
    while (index < glob.length()) {
        String character = glob.substring(index, index + 1)
        if (glob.startsWith('**', index)) {
            regex.append('.*')
            index += 2
        } else if (character == '*') {
            regex.append('[^/]*')
            index += 1
        } else {
            regex.append('\\.[]{}()+-?^$|'.contains(character) ? '\\' + character : character)
            index += 1
        }
    }
    return regex.toString()
}
