"""The device loop: ship a bundle to one device or a fleet, check accuracy and speed there, bring the verdict home.

    jetson_parsers   tegrastats / nvpmodel / jetson_clocks output, JetPack of an L4T release (pure, on text)
    device_facts     the device block of a results file (CPU ISA class; Jetson model, power mode, clocks)
    energy           energy per inference from tegrastats samples over a steady inference loop
    recorded         the reference on the device: outputs recorded at bundle time, served as a runner
    device_artifacts build / validate / bench / energy of one artifact on the device
    device_check     check_device(bundle, out, options): the on-device command's stage (`edgelstm device-check`)
    results          the results file: schema, verdict (exit code per gate), reading it back
    ssh              the system OpenSSH client: one device's connection (ssh, scp), BatchMode, ~/.ssh/config
    remote           run_remote(bundle, target): push, run, stream, pull, clean up; the step that failed
    inventory        a fleet's TOML inventory: hosts, labels, per-device settings; --hosts / --label selection
    fleet            run_fleet: many devices with bounded concurrency, a per-device timeout and retries
    compare          merge results files into one cross-device report (artifacts x devices)
    report           that report as Markdown, HTML and JSON
"""
