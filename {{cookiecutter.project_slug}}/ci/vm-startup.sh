#!/bin/sh
# Start-up script of the training VM that `cml runner launch --cloud aws|gcp|azure` creates:
# the launch-runner job passes it as --cloud-startup-script "$(base64 -w0 ci/vm-startup.sh)".
#
# Why: cml-runner needs terraform to delete its VM when it is done, and CML's own VM set-up
# installs it from HashiCorp's apt repository for the image's Ubuntu release. Only CML's default
# image, 18.04, fails there (HashiCorp removed that release's repository:
# iterative/terraform-provider-iterative#773 and #774); on the 22.04 image ci/cloud_runner.py
# picks, apt installs whatever terraform is newest. This installs a pinned version from
# HashiCorp's release zip, checked against its SHA-256, into /usr/local/bin (ahead of apt's on
# PATH), so the terraform that deletes the VM is a known one; on an 18.04 image it is the only one.
#
# How it runs: CML pastes this text into /usr/bin/cml.sh, inside a heredoc that ends at a line
# reading EOF alone (so no line here may be exactly that), and cml.sh runs it as root right before
# it starts cml-runner. So on success it falls through (an `exit` would end cml.sh before the
# runner starts); on failure it exits 1 after one line on stderr (in the VM's journal), because a
# runner that cannot delete its VM must not start. POSIX sh (cml.sh may run under dash), all in a
# subshell, so that none of its variables or traps reach cml.sh.

(
  TERRAFORM_VERSION=1.9.8
  # HashiCorp's checksum of the linux amd64 zip, as HashiCorp's own Homebrew tap records it:
  # hashicorp/homebrew-tap commit bf6ac9a "Bump terraform to 1.9.8", Formula/terraform.rb.
  TERRAFORM_SHA256=186e0145f5e5f2eb97cbd785bc78f21bae4ef15119349f6ad4fa535b83b10df8
  TERRAFORM_URL=https://releases.hashicorp.com/terraform/1.9.8/terraform_1.9.8_linux_amd64.zip
  INSTALL_DIR=/usr/local/bin

  fail() {
    echo "vm-startup.sh: $*; not starting cml-runner" >&2
    exit 1    # leaves the subshell, whose failure ends cml.sh (last line)
  }

  terraform_is_current() {
    # CHECKPOINT_DISABLE: terraform would otherwise ask HashiCorp whether it is the latest.
    [ "$(CHECKPOINT_DISABLE=1 "$INSTALL_DIR/terraform" version 2>/dev/null | head -n 1)" = \
      "Terraform v$TERRAFORM_VERSION" ]
  }

  install_terraform() {
    tmp=$(mktemp -d) || fail "cannot create a temporary directory"
    trap 'rm -rf "$tmp"' EXIT
    curl --fail --location --retry 3 --silent --show-error --output "$tmp/terraform.zip" "$TERRAFORM_URL" ||
      fail "cannot download $TERRAFORM_URL"
    actual=$(sha256sum "$tmp/terraform.zip" | cut -d ' ' -f 1)
    [ "$actual" = "$TERRAFORM_SHA256" ] ||
      fail "$TERRAFORM_URL has SHA-256 $actual, expected $TERRAFORM_SHA256, so terraform is not installed"
    # Ubuntu's cloud images have python3 but not always unzip.
    if command -v unzip >/dev/null 2>&1; then
      unzip -q "$tmp/terraform.zip" terraform -d "$tmp/unzipped" || fail "cannot unzip $TERRAFORM_URL"
    else
      python3 -m zipfile -e "$tmp/terraform.zip" "$tmp/unzipped" || fail "cannot unzip $TERRAFORM_URL"
    fi
    mkdir -p "$INSTALL_DIR" && install -m 0755 "$tmp/unzipped/terraform" "$INSTALL_DIR/terraform" ||
      fail "cannot install terraform in $INSTALL_DIR"
    terraform_is_current || fail "the terraform installed in $INSTALL_DIR is not version $TERRAFORM_VERSION"
    echo "vm-startup.sh: installed terraform $TERRAFORM_VERSION in $INSTALL_DIR"
  }

  if terraform_is_current; then
    echo "vm-startup.sh: terraform $TERRAFORM_VERSION is already in $INSTALL_DIR"
  else
    install_terraform
  fi
) || exit 1
