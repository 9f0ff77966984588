//! `cargo xtask deploy` and `cargo xtask teardown`: the stack of `deploy/waystream.yaml`
//! on AWS, through the AWS CLI (v2, with your credentials and region). See
//! `docs/deploy.md` for what each step does and the same commands by hand.
//!
//! `deploy --stack NAME --artifacts-bucket BUCKET --subnet SUBNET [--prefix P]
//! [--delivery firehose|direct] [--param Key=Value]…`: packages (release), uploads the
//! artifacts, creates or updates the stack and waits, installs the OpenSearch index
//! template, lifecycle policy and Dashboards objects (from this machine's public address,
//! which the stack allows), and prints the Dashboards URL.
//!
//! `teardown --stack NAME`: empties the stack's buckets and deletes it, waiting.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{output, run};

/// Options of `deploy`.
struct Options {
    stack: String,
    bucket: String,
    subnet: String,
    prefix: String,
    delivery: String,
    params: Vec<String>,
}

fn options(args: &[String]) -> Result<Options> {
    let mut options = Options {
        stack: String::new(),
        bucket: String::new(),
        subnet: String::new(),
        prefix: "waystream/".into(),
        delivery: "firehose".into(),
        params: Vec::new(),
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .cloned()
                .with_context(|| format!("{arg} needs a value"))
        };
        match arg.as_str() {
            "--stack" => options.stack = value()?,
            "--artifacts-bucket" => options.bucket = value()?,
            "--subnet" => options.subnet = value()?,
            "--prefix" => options.prefix = value()?,
            "--delivery" => options.delivery = value()?,
            "--param" => options.params.push(value()?),
            other => bail!("unknown deploy option {other:?}"),
        }
    }
    anyhow::ensure!(
        !options.stack.is_empty() && !options.bucket.is_empty() && !options.subnet.is_empty(),
        "usage: cargo xtask deploy --stack NAME --artifacts-bucket BUCKET --subnet SUBNET [--prefix P] [--delivery firehose|direct] [--param Key=Value]…"
    );
    Ok(options)
}

/// Packages, uploads, deploys, sets up OpenSearch, prints the Dashboards URL.
pub fn deploy(root: &Path, args: &[String]) -> Result<()> {
    let options = options(args)?;
    aws_cli()?;
    let package = crate::package::package(root, &[])?;
    run(Command::new("aws")
        .args(["s3", "cp", "--recursive", "--only-show-errors"])
        .arg(&package)
        .arg(format!("s3://{}/{}", options.bucket, options.prefix))
        .args(["--exclude", "*", "--include", "ingest-lambda.zip"])
        .args([
            "--include",
            "waystream-host.tar.gz*",
            "--include",
            "bootstrap.sh",
        ]))?;
    let address = output(Command::new("curl").args(["-sS", "https://checkip.amazonaws.com"]))
        .context("finding this machine's public address")?;
    let mut deploy = Command::new("aws");
    deploy
        .args(["cloudformation", "deploy", "--stack-name", &options.stack])
        .arg("--template-file")
        .arg(root.join("deploy/waystream.yaml"))
        .args([
            "--capabilities",
            "CAPABILITY_NAMED_IAM",
            // A second deploy with nothing changed goes on to the index template and the
            // Dashboards objects instead of failing.
            "--no-fail-on-empty-changeset",
            "--parameter-overrides",
        ])
        .arg(format!("ArtifactsBucket={}", options.bucket))
        .arg(format!("ArtifactsPrefix={}", options.prefix))
        .arg(format!("Ec2SubnetId={}", options.subnet))
        .arg(format!("Delivery={}", options.delivery))
        .arg(format!("DashboardsAllowedCidr={}/32", address.trim()))
        .args(&options.params);
    eprintln!("xtask: creating or updating the stack (20-30 minutes the first time)");
    run(&mut deploy)?;
    let outputs = stack_outputs(&options.stack)?;
    let endpoint = outputs
        .get("OpenSearchEndpoint")
        .context("the stack has no OpenSearchEndpoint output")?;
    let opensearch = root.join("deploy/opensearch");
    let put = |path: &str, file: &str| -> Result<()> {
        let reply = output(
            Command::new("curl")
                .args(["-sS", "--fail-with-body", "-X", "PUT"])
                .arg(format!("{endpoint}/{path}"))
                .args(["-H", "Content-Type: application/json", "-d"])
                .arg(format!("@{}", opensearch.join(file).display())),
        )?;
        eprintln!("xtask: PUT {path}: {}", reply.trim());
        Ok(())
    };
    put("_index_template/waystream-points", "index-template.json")?;
    put(
        "_plugins/_ism/policies/waystream-points-daily",
        "ism-policy.json",
    )?;
    if options.delivery == "direct" {
        put(
            "_plugins/_ism/policies/waystream-points-rollover",
            "ism-policy-rollover.json",
        )?;
        let _ = output(
            Command::new("curl")
                .args(["-sS", "-X", "PUT"])
                .arg(format!("{endpoint}/waystream-points-000001"))
                .args(["-H", "Content-Type: application/json", "-d"])
                .arg(r#"{"aliases":{"waystream-points":{"is_write_index":true}}}"#),
        )?;
    }
    // Saved objects have fixed ids: importing again replaces them, never duplicates.
    let imported = output(
        Command::new("curl")
            .args(["-sS", "--fail-with-body", "-X", "POST"])
            .arg(format!(
                "{endpoint}/_dashboards/api/saved_objects/_import?overwrite=true"
            ))
            .args(["-H", "osd-xsrf: true", "--form"])
            .arg(format!(
                "file=@{}",
                opensearch.join("dashboards.ndjson").display()
            )),
    )?;
    eprintln!("xtask: saved objects: {}", imported.trim());
    println!(
        "Dashboards: {endpoint}/_dashboards/app/dashboards#/view/waystream-overview\nUpload PLT files: aws s3 cp --recursive DIR {}",
        outputs
            .get("UploadUri")
            .map_or("<UploadUri>", String::as_str)
    );
    Ok(())
}

/// The checks of the deployment artifacts the test command runs: `deploy/tests` (cfn-lint
/// clean, IAM scoped, the template deployed into moto server, the OpenSearch files
/// consistent, the bootstrap action on a fake node) and shellcheck on the scripts.
pub fn check(root: &Path) -> Result<()> {
    let bin = crate::local_aws::python_tools(root)?;
    run(Command::new(bin.join("python"))
        .args(["-m", "pytest", "-q"])
        .arg(root.join("deploy/tests")))?;
    run(Command::new(bin.join("shellcheck"))
        .arg(root.join("deploy/emr/bootstrap.sh"))
        .arg(root.join("deploy/smoke-test.sh")))
}

/// Empties the stack's buckets and deletes the stack.
pub fn teardown(args: &[String]) -> Result<()> {
    let stack = match args {
        [flag, name] if flag == "--stack" => name.clone(),
        _ => bail!("usage: cargo xtask teardown --stack NAME"),
    };
    aws_cli()?;
    let outputs = stack_outputs(&stack)?;
    for key in [
        "UploadBucketName",
        "DeadLetterBucketName",
        "FailedDocumentsBucketName",
        "EmrLogBucketName",
    ] {
        if let Some(bucket) = outputs.get(key) {
            run(Command::new("aws")
                .args(["s3", "rm", "--recursive", "--only-show-errors"])
                .arg(format!("s3://{bucket}")))?;
        }
    }
    run(Command::new("aws").args(["cloudformation", "delete-stack", "--stack-name", &stack]))?;
    run(Command::new("aws").args([
        "cloudformation",
        "wait",
        "stack-delete-complete",
        "--stack-name",
        &stack,
    ]))?;
    eprintln!("xtask: stack {stack} deleted");
    Ok(())
}

/// The stack's outputs, by key.
fn stack_outputs(stack: &str) -> Result<BTreeMap<String, String>> {
    let text = output(Command::new("aws").args([
        "cloudformation",
        "describe-stacks",
        "--stack-name",
        stack,
        "--query",
        "Stacks[0].Outputs[].[OutputKey,OutputValue]",
        "--output",
        "text",
    ]))?;
    Ok(text
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

fn aws_cli() -> Result<()> {
    output(Command::new("aws").arg("--version"))
        .map(drop)
        .context("the AWS CLI (v2) is needed: https://docs.aws.amazon.com/cli/")
}
