/*-------------------------------------------------------------------------
 *
 * kernelfuncs.c
 *	  SQL functions about the kernels a backend runs: which ones
 *	  (scoreah_kernels), whether they agree with the portable ones on this
 *	  CPU (scoreah_kernel_selftest) and how fast the LUT16 kernels are in
 *	  memory (scoreah_kernel_benchmark).
 *
 * The self-test and the benchmark stay in the extension, rather than in a
 * test-only module, because the machines a server runs on differ in their
 * CPUs and a DBA should be able to check and time the kernels on the one
 * the server actually has.  They are not for everybody: the extension
 * script revokes them from PUBLIC (superusers, or roles granted EXECUTE,
 * may call them), their arguments are bounded so that one call takes at
 * most SELFTEST_MAX_BYTES of memory and a bounded amount of work, and both
 * check for cancel as they go.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "lib/stringinfo.h"
#include "portability/instr_time.h"
#include "utils/builtins.h"

#include "scoreah.h"

PG_FUNCTION_INFO_V1(scoreah_kernels);
PG_FUNCTION_INFO_V1(scoreah_kernel_selftest);
PG_FUNCTION_INFO_V1(scoreah_kernel_benchmark);

/* Limits of one call */
#define KERNEL_MAX_BLOCKS		4096
#define SELFTEST_MAX_BYTES		((Size) 64 * 1024 * 1024)	/* codes in memory */
#define BENCHMARK_MAX_ROUNDS	100000
#define BENCHMARK_MAX_WORK		((double) 2e10) /* blocks x rows scored */

/*
 * Which kernels this backend uses, e.g. "float=avx2 lut16=avx512bw
 * exact=avx2 lut16@50=avx2": lut16 is the widest LUT16 kernel the CPU runs
 * (the build's calibration uses it), and each lut16@N the one a scan of an
 * index with N blocks timed as fastest in this backend (cpu.c), so that a
 * benchmark can say which kernel its figures are of.
 */
Datum
scoreah_kernels(PG_FUNCTION_ARGS)
{
	StringInfoData out;
	int			nblocks[SCOREAH_LUT16_CHOICES];
	const char *names[SCOREAH_LUT16_CHOICES];
	int			n = scoreah_lut16_choices(nblocks, names, lengthof(nblocks));

	initStringInfo(&out);
	appendStringInfo(&out, "float=%s lut16=%s exact=%s",
					 scoreah_float_kernel_name(),
					 scoreah_lut16_kernel_name(),
					 scoreah_exact_kernel_name());
	for (int i = 0; i < n; i++)
		appendStringInfo(&out, " lut16@%d=%s", nblocks[i], names[i]);
	PG_RETURN_TEXT_P(cstring_to_text(out.data));
}

/* The codes of ngroups groups of nblocks blocks must fit the limit */
static void
CheckKernelArgs(int nblocks, int ngroups)
{
	if (nblocks < 1 || nblocks > KERNEL_MAX_BLOCKS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("nblocks must be between 1 and %d, got %d", KERNEL_MAX_BLOCKS, nblocks)));
	if (ngroups < 1 || (Size) ngroups * nblocks * 16 > SELFTEST_MAX_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ngroups must be between 1 and %d at %d blocks, got %d",
						(int) (SELFTEST_MAX_BYTES / ((Size) nblocks * 16)), nblocks, ngroups),
				 errdetail("The codes of one call may take at most %d MB.",
						   (int) (SELFTEST_MAX_BYTES / (1024 * 1024)))));
}

/*
 * scoreah_kernel_selftest(nblocks, ngroups, seed): every LUT16 kernel this
 * CPU runs must give the scalar kernel's sums bit for bit (on random and
 * on saturated tables), every exact distance kernel set (and half
 * conversion) the scalar set's doubles bit for bit, and the float kernels
 * must agree with the scalar ones to rounding.  Returns a line saying how
 * many kernels were compared; errors on any disagreement.
 */
Datum
scoreah_kernel_selftest(PG_FUNCTION_ARGS)
{
	int			nblocks = PG_GETARG_INT32(0);
	int			ngroups = PG_GETARG_INT32(1);
	uint64		seed = (uint64) PG_GETARG_INT64(2);
	char		bad[256];
	int			tested,
				testedExact;

	CheckKernelArgs(nblocks, ngroups);
	tested = scoreah_lut16_selftest(nblocks, ngroups, seed, false, bad, sizeof(bad));
	if (bad[0] == '\0')
		scoreah_lut16_selftest(nblocks, Min(ngroups, 64), seed, true, bad, sizeof(bad));
	if (bad[0] != '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("LUT16 kernels disagree with the scalar kernel"),
				 errdetail("%s", bad)));
	testedExact = scoreah_exact_selftest(seed, bad, sizeof(bad));
	if (bad[0] != '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("exact distance kernels disagree with the scalar ones"),
				 errdetail("%s", bad)));
	scoreah_float_selftest(nblocks * 2 + 1, seed, bad, sizeof(bad));
	if (bad[0] != '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("float kernels disagree with the scalar ones"),
				 errdetail("%s", bad)));
	PG_RETURN_TEXT_P(cstring_to_text(psprintf("ok: %d LUT16 kernel%s agree with scalar at %d blocks, %d exact kernel set%s bit for bit",
											  tested, tested == 1 ? "" : "s", nblocks,
											  testedExact, testedExact == 1 ? "" : "s")));
}

/*
 * scoreah_kernel_benchmark(nblocks, ngroups, rounds): time every LUT16
 * kernel this CPU runs over ngroups groups of random codes held in memory
 * (rounds passes).  Returns (kernel, ns_per_row, speedup over scalar,
 * dispatched: whether scans of indexes with nblocks blocks use it).
 */
Datum
scoreah_kernel_benchmark(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			nblocks = PG_GETARG_INT32(0);
	int			ngroups = PG_GETARG_INT32(1);
	int			rounds = PG_GETARG_INT32(2);
	const ScoreahLut16Impl *impls[8];
	int			nk;
	void	   *codesmem;
	uint8	   *codes,
			   *qlut;
	uint32	   *out;
	void	   *operands;
	ScoreahRandom rng;
	double		scalarNs = 0;
	uint32		sink = 0;
	const ScoreahLut16Impl *dispatched;

	CheckKernelArgs(nblocks, ngroups);
	if (rounds < 1 || rounds > BENCHMARK_MAX_ROUNDS ||
		(double) rounds * ngroups * SCOREAH_GROUP_ROWS * nblocks > BENCHMARK_MAX_WORK)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rounds must be between 1 and %d, and rounds x ngroups x 32 x nblocks at most %.0f, got %d rounds",
						BENCHMARK_MAX_ROUNDS, BENCHMARK_MAX_WORK, rounds)));
	InitMaterializedSRF(fcinfo, 0);
	nk = scoreah_lut16_available(impls, lengthof(impls));
	dispatched = scoreah_lut16_for(nblocks, (uint32) MyProcPid);
	/* as far off a 64-byte line as a page's codes usually are */
	codesmem = palloc((Size) ngroups * nblocks * 16 + SCOREAH_CODES_SLACK);
	codes = SCOREAH_CODES_PLACE(codesmem);
	/* the table and sums where a scan has them (lut.c) */
	operands = scoreah_lut16_operands(nblocks, &qlut, &out);
	scoreah_random_init(&rng, 7);
	for (Size i = 0; i < (Size) ngroups * nblocks * 16; i++)
		codes[i] = (uint8) scoreah_random_next(&rng);
	for (int i = 0; i < nblocks * 16; i++)
		qlut[i] = (uint8) scoreah_random_next(&rng);

	for (int k = 0; k < nk; k++)
	{
		instr_time	start,
					end;
		double		ns;
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		INSTR_TIME_SET_CURRENT(start);
		for (int r = 0; r < rounds; r++)
			for (int g = 0; g < ngroups; g++)
			{
				if ((g & 1023) == 0)
					CHECK_FOR_INTERRUPTS();
				/* the next group prefetched as a scan does */
				impls[k]->scan(codes + (Size) g * nblocks * 16, qlut, nblocks, out,
							   PG_UINT32_MAX,
							   codes + (Size) ((g + 1) % ngroups) * nblocks * 16);
				sink += out[g & 31];
			}
		INSTR_TIME_SET_CURRENT(end);
		INSTR_TIME_SUBTRACT(end, start);
		ns = INSTR_TIME_GET_DOUBLE(end) * 1e9 / ((double) rounds * ngroups * SCOREAH_GROUP_ROWS);
		if (k == 0)
			scalarNs = ns;
		values[0] = CStringGetTextDatum(impls[k]->name);
		values[1] = Float8GetDatum(ns);
		values[2] = Float8GetDatum(scalarNs / ns);
		values[3] = BoolGetDatum(impls[k] == dispatched);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	/* keep the compiler from dropping the loops */
	if (sink == 0xFFFFFFFF)
		elog(DEBUG5, "scoreah kernel benchmark sink %u", sink);
	pfree(codesmem);
	pfree(operands);
	return (Datum) 0;
}
