// brainscanServicePipeline(config): the pipeline of a brainscan image (gateway, inference,
// model-sync, MLflow): path filter -> Lint -> Unit tests -> Build image <build>-<commit> -> Check
// the image -> Push to Docker Hub -> Deploy (main) -> Smoke test (main). Each component's
// Jenkinsfile loads this library from its own commit and passes what differs (docs/ci.md):
//   component  image docker.io/<namespace>/<component>, built by infra/images/build.sh <component>
//   paths      Ant-style globs of the path filter (brainscanChanged)
//   lint       folders or files for ruff check and ruff format --check
//   tests      pytest arguments (folders or files); JUnit report reports/junit-<component>.xml
//   imageKey   the image's key in the deploy role's brainscan_deploy_image_tags
//   smokeTest  classify an image through the public gateway after the deploy (default true)
// Credentials are Jenkins credentials, never in a Jenkinsfile: 'dockerhub' (username + access
// token), 'brainscan-ansible-vault-password' (secret file), 'brainscan-smoke-api-key' (secret text).

// A declarative pipeline is one long block by nature; its stages are the units to read.
@SuppressWarnings('MethodSize')
void call(Map config) {
    checkConfig(config)
    boolean smokeTest = config.smokeTest == null ? true : config.smokeTest

    pipeline {
        agent { label 'docker' }

        options {
            buildDiscarder(logRotator(numToKeepStr: '30'))
            disableConcurrentBuilds(abortPrevious: true)
            timeout(time: 60, unit: 'MINUTES')
            timestamps()
        }

        environment {
            COMPONENT = "${config.component}"
            IMAGE_KEY = "${config.imageKey}"
            // Word-split on purpose in the shell commands below (checkConfig allows no spaces).
            LINT_PATHS = "${config.lint.join(' ')}"
            TEST_PATHS = "${config.tests.join(' ')}"
            IMAGE_PREFIX = "docker.io/${env.DOCKERHUB_NAMESPACE ?: 'brainscan'}"
            IMAGE_TAG = "${env.BUILD_NUMBER}-${env.GIT_COMMIT.take(7)}"
            IMAGE = "${IMAGE_PREFIX}/${COMPONENT}:${IMAGE_TAG}"
            CONTAINER_ENGINE = 'docker'
            UV_FROZEN = '1'
        }

        stages {
            stage('Path filter') {
                // Build only when the component's files changed since the last green build (or
                // there is none yet), or when started by hand.
                when {
                    anyOf {
                        triggeredBy 'UserIdCause'
                        expression { brainscanChanged(config.paths) }
                    }
                }
                stages {
                    stage('Lint') {
                        steps {
                            sh 'make install'
                            sh 'uv run --frozen ruff check $LINT_PATHS'
                            sh 'uv run --frozen ruff format --check $LINT_PATHS'
                        }
                    }

                    stage('Unit tests') {
                        steps {
                            sh 'uv run --frozen pytest $TEST_PATHS --junitxml="reports/junit-$COMPONENT.xml"'
                        }
                        post {
                            always {
                                junit testResults: 'reports/junit-*.xml', allowEmptyResults: false
                            }
                        }
                    }

                    stage('Build image') {
                        steps {
                            sh 'IMAGE_TAG="$IMAGE_TAG" bash infra/images/build.sh "$COMPONENT"'
                        }
                        post {
                            success {
                                script { currentBuild.description = "image ${env.IMAGE}" }
                            }
                        }
                    }

                    stage('Check the image') {
                        // The image starts on its own and passes its own HEALTHCHECK (the
                        // component's liveness route, which needs no other service).
                        steps {
                            sh '''
                                name="brainscan-check-$(printf '%s' "$BUILD_TAG" | tr -c 'A-Za-z0-9_.-' '-')"
                                docker run --detach --name "$name" "$IMAGE"
                                trap 'docker rm --force "$name" >/dev/null 2>&1 || true' EXIT
                                status=starting
                                for attempt in $(seq 1 90); do
                                    status=$(docker inspect --format '{{.State.Health.Status}}' "$name")
                                    case "$status" in
                                        healthy) exit 0 ;;
                                        unhealthy) break ;;
                                    esac
                                    if [ "$(docker inspect --format '{{.State.Running}}' "$name")" != true ]; then
                                        status=exited
                                        break
                                    fi
                                    sleep 2
                                done
                                echo "$IMAGE is not healthy: $status"
                                docker logs --tail 50 "$name"
                                exit 1
                            '''
                        }
                    }

                    stage('Push') {
                        // Pull requests from forks never get the registry credentials.
                        when { not { changeRequest() } }
                        steps {
                            withCredentials([usernamePassword(credentialsId: 'dockerhub',
                                    usernameVariable: 'DOCKERHUB_USER', passwordVariable: 'DOCKERHUB_TOKEN')]) {
                                sh '''
                                    echo "$DOCKERHUB_TOKEN" | docker login --username "$DOCKERHUB_USER" --password-stdin docker.io
                                    docker push "$IMAGE"
                                '''
                            }
                        }
                        post {
                            always { sh 'docker logout docker.io || true' }
                        }
                    }

                    stage('Deploy') {
                        when { branch 'main' }
                        steps {
                            // Only this image moves: the deploy role keeps every other image at
                            // the tag the release runs. One deploy at a time across the jobs, so
                            // none reads the release while another one changes it.
                            writeJSON file: 'deploy-vars.json',
                                json: [brainscan_deploy_image_tags: [(env.IMAGE_KEY): env.IMAGE_TAG]]
                            lock(resource: 'brainscan-production-deploy') {
                                withCredentials([file(credentialsId: 'brainscan-ansible-vault-password',
                                        variable: 'VAULT_PASSWORD_FILE')]) {
                                    dir('ansible') {
                                        sh 'uv run --frozen ansible-galaxy collection install -r requirements.yml'
                                        sh '''
                                            uv run --frozen ansible-playbook -i inventories/production playbooks/deploy.yml \
                                                --vault-id production@"$VAULT_PASSWORD_FILE" \
                                                -e @"$WORKSPACE/deploy-vars.json"
                                        '''
                                    }
                                }
                            }
                        }
                    }

                    stage('Smoke test') {
                        // Through the public gateway: one prediction needs every service working.
                        when {
                            allOf {
                                branch 'main'
                                expression { smokeTest }
                            }
                        }
                        steps {
                            withCredentials([string(credentialsId: 'brainscan-smoke-api-key', variable: 'SMOKE_API_KEY')]) {
                                sh 'python3 ci/smoke_test.py --url "$BRAINSCAN_URL" --timeout 300'
                            }
                        }
                    }
                }
            }
        }

        post {
            always {
                brainscanBuildEvent()
            }
            cleanup {
                sh 'docker image rm "$IMAGE" || true'
            }
        }
    }
}

// Refuse a configuration the pipeline cannot run, before any agent is taken. Values end up in
// shell commands, so they may hold no spaces or shell characters.
void checkConfig(Map config) {
    for (String key in ['component', 'paths', 'lint', 'tests', 'imageKey']) {
        if (!config[key]) {
            error("brainscanServicePipeline: '${key}' is missing (docs/ci.md lists the keys)")
        }
    }
    List<String> words = [config.component, config.imageKey] + config.paths + config.lint + config.tests
    for (String word in words) {
        if (!word.matches('[A-Za-z0-9_./*-]+')) {
            error("brainscanServicePipeline: '${word}' is not a plain path or name")
        }
    }
    if (!['gateway', 'inference', 'model_sync', 'mlflow'].contains(config.imageKey)) {
        error("brainscanServicePipeline: imageKey '${config.imageKey}' is none of gateway, inference, model_sync, mlflow")
    }
}
