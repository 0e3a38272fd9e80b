"""Building blocks of blind kernel estimation, shared by the kernel search and the baselines:
the gradient-domain kernel step (`kernel_step`), the kernel clean-ups between steps
(`cleanup`) and the photo's noise level (`noise`)."""
