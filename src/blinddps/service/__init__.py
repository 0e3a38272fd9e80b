"""The service layer under the command line and the web app: loading the priors once,
writing a restoration's files and its JSON record, wording failures."""
from .failures import OUT_OF_MEMORY_HINT, UserError, failure_reason, is_out_of_memory, one_line
from .outputs import output_paths, restored_suffix, save_kernel, save_scaled_map, write_outputs
from .priors import load_priors
from .records import output_record, package_version

__all__ = ["OUT_OF_MEMORY_HINT", "UserError", "failure_reason", "is_out_of_memory", "load_priors", "one_line",
           "output_paths", "output_record", "package_version", "restored_suffix", "save_kernel", "save_scaled_map",
           "write_outputs"]
