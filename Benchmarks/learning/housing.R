# Writes two real housing data sets as plain CSVs for the learning benchmark (housing.sh
# calls it; it needs only R's interpreter, not the packages' R dependencies).
#
#   Rscript housing.R MODELDATA_DIR OUT_DIR
#
# MODELDATA_DIR is the extracted package directory of Debian's r-cran-modeldata
# (…/site-library/modeldata). Its data are an R lazy-load database (data/Rdata.rdb/.rdx),
# read with lazyLoad() into an environment, so the package itself (and dplyr, tibble)
# never has to load.
#
# Output, one row per sale, every column numeric:
#   ames.csv        2,930 rows: 73 features + label, label = Sale_Price > median(Sale_Price)
#   sacramento.csv    932 rows:  8 features + label, label = price > median(price)
#   *_levels.csv    every factor column's levels and the code each got
# Factor columns become integer codes 0..k-1 in R's level order (the order the package
# defines: worst to best for graded columns such as Overall_Cond). Both learners read the same codes as ordinary numbers (Tower bins
# categorical codes like numbers, and the LightGBM peer is given no categorical_feature),
# so neither side gets a categorical treatment the other lacks. The target column itself
# is not written. Neither data set has missing values (checked here).
args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 2) stop("usage: Rscript housing.R MODELDATA_DIR OUT_DIR")
modeldata <- args[1]
out <- args[2]
dir.create(out, showWarnings = FALSE, recursive = TRUE)

db <- new.env()
invisible(lazyLoad(file.path(modeldata, "data", "Rdata"), envir = db))

write_set <- function(frame, target, name) {
    frame <- as.data.frame(frame)   # ames is a tibble; plain data.frame from here
    if (anyNA(frame)) stop(name, " has missing values")
    price <- frame[[target]]
    threshold <- median(price)
    frame[[target]] <- NULL
    levels_rows <- list()
    for (col in names(frame)) {
        if (is.factor(frame[[col]])) {
            lv <- levels(frame[[col]])
            levels_rows[[col]] <- data.frame(column = col, code = seq_along(lv) - 1L, level = lv)
            frame[[col]] <- as.integer(frame[[col]]) - 1L
        }
    }
    frame$label <- as.integer(price > threshold)
    # 15 significant digits: every value as R holds it (coordinates, areas, years).
    write.csv(format(frame, digits = 15, trim = TRUE, scientific = FALSE), file.path(out, paste0(name, ".csv")),
              row.names = FALSE, quote = FALSE)
    write.csv(do.call(rbind, levels_rows), file.path(out, paste0(name, "_levels.csv")), row.names = FALSE)
    cat(sprintf("%s: %d rows x %d features, %d factor columns, label = %s > %s (median), %.1f%% positive\n",
                name, nrow(frame), ncol(frame) - 1L, length(levels_rows), target,
                format(threshold, scientific = FALSE), 100 * mean(frame$label)))
}

write_set(get("ames", envir = db), "Sale_Price", "ames")
write_set(get("Sacramento", envir = db), "price", "sacramento")
