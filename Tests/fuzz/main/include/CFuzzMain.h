/* The fuzz executables' entry points: SwiftPM links an executable's `main` as
 * MODULE_main (--defsym), so each target's is defined here and hands over to
 * libFuzzer's driver with the target's LLVMFuzzerTestOneInput. */
#ifndef XDPLB_CFUZZMAIN_H
#define XDPLB_CFUZZMAIN_H
int xdplb_fuzz_config_main(int argc, char **argv);
int xdplb_fuzz_pcap_main(int argc, char **argv);
#endif
