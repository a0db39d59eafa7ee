# Puts rustup's ~/.cargo/bin on PATH when it is not there (sudo resets PATH), so cargo,
# rustup and bpf-linker are found. Sourced by setup.sh, run.sh and test.sh.
if [ -d "$HOME/.cargo/bin" ]; then
  case ":$PATH:" in
    *":$HOME/.cargo/bin:"*) ;;
    *) PATH="$HOME/.cargo/bin:$PATH"; export PATH ;;
  esac
fi
