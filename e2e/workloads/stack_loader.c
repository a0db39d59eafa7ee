/* Runs the user-stack workload built as a shared library (its main renamed
 * workload_main), so that the stack's frames lie in a library: a file that, unlike a
 * running executable, its process may still shrink. Same usage as stack-workload. */
int workload_main(int argc, char **argv);

int main(int argc, char **argv) { return workload_main(argc, argv); }
