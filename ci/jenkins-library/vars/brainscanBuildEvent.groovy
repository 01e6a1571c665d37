// brainscanBuildEvent(): the last step of every brainscan pipeline (post { always }). Posts one
// ECS event for this build to Logstash's Jenkins input (elk/jenkins/build_event.py), where the
// Kibana dashboard "brainscan · Deployments" lists builds by result. Best effort: without the
// credential or with Logstash down the build only says so, its result stays what it was.

void call() {
    String command = 'python3 elk/jenkins/build_event.py' +
        " --result ${currentBuild.currentResult}" +
        " --duration-ms ${currentBuild.duration}" +
        " --start-ms ${currentBuild.startTimeInMillis}"
    try {
        withCredentials([usernamePassword(credentialsId: 'brainscan-build-events',
                                          usernameVariable: 'BRAINSCAN_BUILD_EVENTS_USER',
                                          passwordVariable: 'BRAINSCAN_BUILD_EVENTS_PASSWORD')]) {
            sh command
        }
    } catch (err) {
        echo "Build event not sent: ${err}"
    }
}
