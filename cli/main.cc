// xpipe: the one command-line front end (cli/dispatch.cc).
#include "cli/commands.h"

int main(int argc, char** argv) { return xpipe::cli::Run(argc, argv); }
