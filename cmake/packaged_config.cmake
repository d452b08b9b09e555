# The example configuration the Debian package installs as /etc/apsis-exportd/apsis-exportd.yaml:
# config/example.yaml with the package's paths, so its commentary has one source. Each replaced piece
# must be found, or the configure step fails (an edit of example.yaml that drops one shows up here).
#   apsis_packaged_config(<output file>)
function(apsis_packaged_config output)
  file(READ ${CMAKE_SOURCE_DIR}/config/example.yaml text)
  set(replacements
    "# yaml-language-server: $schema=../schema/exports.schema.json"
    "# yaml-language-server: $schema=/usr/share/apsis-exportd/exports.schema.json"

    "output_dir: /srv/apsis-exports"
    "output_dir: /var/lib/apsis-exportd/exports"

    "    # From the API key page in APSIS One. Set it in a drop-in with Environment=APSIS_CLIENT_ID=...
    client_id: \${APSIS_CLIENT_ID}
"
    "    # From the API key page in APSIS One.
    client_id: REPLACE-WITH-YOUR-CLIENT-ID
"

    "    # Here it comes as a systemd credential: a drop-in (systemctl edit apsis-exportd) with
    # LoadCredential=apsis-secret:/etc/apsis-exportd/apsis-secret makes it available as
    # /run/credentials/apsis-exportd.service/apsis-secret and sets $CREDENTIALS_DIRECTORY to that
    # directory for the service. The packaged /etc/apsis-exportd/apsis-exportd.yaml reads
    # /etc/apsis-exportd/apsis-secret directly instead (see README, \"Install\").
    client_secret_file: \${CREDENTIALS_DIRECTORY}/apsis-secret
"
    "    # Readable by the service and by `sudo -u apsis-exportd apsis-exportd ...`, by nobody else:
    #   install -m 0640 -g apsis-exportd /dev/stdin /etc/apsis-exportd/apsis-secret
    # (type or paste the secret, Enter, Ctrl-D). The service does not start until this file exists.
    client_secret_file: /etc/apsis-exportd/apsis-secret
")
  while(replacements)
    list(POP_FRONT replacements from to)
    string(FIND "${text}" "${from}" at)
    if(at EQUAL -1)
      message(FATAL_ERROR "cmake/packaged_config.cmake: config/example.yaml no longer contains:\n${from}")
    endif()
    string(REPLACE "${from}" "${to}" text "${text}")
  endwhile()
  file(WRITE ${output} "${text}")
endfunction()
