// The figures a reader would rather look at than read: training loss and
// evaluation metrics over time per row of the table, and for PARSER runs the
// learned singular values against the pretrained ones, layer by layer.
#pragma once

#include <filesystem>
#include <vector>

#include "run_record.h"
#include "table_layout.h"

namespace sparser::analysis {

// Writes into out_dir, for each column group of the layout (<dataset> stands for
// <dataset>-<experiment> where several groups share a dataset; docs/analysis.md):
//   <dataset>/loss.png                 training loss vs step, one line per row
//   <dataset>/<metric>.png             evaluation metric vs epoch, one line per row
//   <dataset>/sigma/<row>/<layer>.png  σ pretrained and learned vs index, and their ratio
//                                      (<row>: its slug, numbered where two rows' slugs are alike)
//   <dataset>/sigma/<row>/ratio_by_layer.png  mean learned/pretrained ratio per layer
// each with a pgfplots .tex beside it. Lines are means over the runs a table
// averages (select_cell_runs: one completed run per seed). Returns the files
// written.
std::vector<std::filesystem::path> write_figures(const std::vector<RunRecord>& runs, const TableLayout& layout,
                                                 const std::filesystem::path& out_dir);

// A file-name-safe form of a row or layer name ("SAM-PARSER (Ours)" → "SAM-PARSER_Ours").
std::string file_slug(const std::string& name);

}  // namespace sparser::analysis
